package check

// jwt/none-algorithm proves that an API accepts a JWT that carries no signature at all: the
// identity's real token with its header's alg set to "none", and to "None" and "NONE", which a
// case-sensitive blocklist misses, and its signature segment empty. The probe must first accept the
// real token and refuse a request without one (forgeryControl); an unsigned token accepted then is
// the proof.

import (
	"context"
	"fmt"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/forge"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
)

// NoneAlgorithm is the check jwt/none-algorithm.
type NoneAlgorithm struct{}

func (NoneAlgorithm) Meta() Meta {
	return Meta{
		ID:    "jwt/none-algorithm",
		Title: "Unsigned JWT (alg none) accepted",
		CWE:   "CWE-347",
		Description: "Sends the identity's JWT with alg none, None and NONE and no signature to a probe that accepts the real " +
			"token and refuses a request without one; an accepted unsigned token proves the signature is not required.",
		Remediation: remediationAlgorithms,
		References: []string{
			"https://cwe.mitre.org/data/definitions/347.html",
			"https://www.rfc-editor.org/rfc/rfc8725#section-3.1",
			"https://cheatsheetseries.owasp.org/cheatsheets/JSON_Web_Token_for_Java_Cheat_Sheet.html",
		},
	}
}

// noneAlgs are the spellings of "none" sent: RFC 7518 names it "none", and verifiers that compare
// case-sensitively against a blocklist let the others through.
var noneAlgs = []string{"none", "None", "NONE"}

func (c NoneAlgorithm) Run(ctx context.Context, env *Env) ([]finding.Finding, error) {
	meta := c.Meta()
	return forEachProbe(ctx, env, meta.ID, func(ctx context.Context, p *probe.Probe, id *identity.Identity) (*finding.Finding, error) {
		return runForgery(ctx, env, meta, p, id, func(_ context.Context, f *forgery) ([]variant, error) {
			var vs []variant
			for _, alg := range noneAlgs {
				vs = append(vs, variant{
					name: fmt.Sprintf("alg %q, no signature", alg),
					made: fmt.Sprintf("the header of %s's token with alg %q, its claims, an empty signature segment", id.Name, alg),
					sign: func(claims map[string]any) (string, error) { return forge.Unsigned(f.tok, claims, alg) },
				})
			}
			return vs, nil
		})
	})
}

// remediationAlgorithms is shared by the checks that forge a token the verifier should have refused
// for its algorithm (none, an HMAC keyed with a public key, a key carried in the token).
const remediationAlgorithms = `Verify every token with the algorithm and key your server chooses, never with what the token's header names.
- Fix the accepted algorithm list to the one your issuer uses (e.g. RS256 only, or HS256 only), never include "none", and take the key from your configuration or your issuer's JWKS, not from the token (no jwk, jku or x5u header is trusted).
- PyJWT: jwt.decode(token, key, algorithms=["RS256"]); never options={"verify_signature": False}, never the token's own alg from jwt.get_unverified_header() to choose how to verify.
- golang-jwt: jwt.Parse(token, keyFunc, jwt.WithValidMethods([]string{"RS256"})), a keyFunc that returns your key whatever the header says, and never jwt.UnsafeAllowNoneSignatureType.
- jsonwebtoken (Express): jwt.verify(token, publicKey, { algorithms: ["RS256"] }); never jwt.decode() to authenticate a request.
- Spring Security: NimbusJwtDecoder.withJwkSetUri(uri).jwsAlgorithm(SignatureAlgorithm.RS256).build() (or withPublicKey / withSecretKey with its one algorithm); do not parse tokens yourself with JWTParser.parse and trust the result.`
