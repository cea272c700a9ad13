package check

// jwt/signature-not-verified proves that an API reads a JWT's claims without checking its signature:
// the identity's real token with its payload changed (exp moved a day later) under the original
// signature, and the token with its signature removed and with it corrupted. With a second identity
// named (verifier), a token claiming that identity's sub under the original signature follows the
// first one accepted. The probe must accept the real token and refuse a request without one first;
// acceptance of a token whose signature does not match is the proof.

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/forge"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
)

// SignatureNotVerified is the check jwt/signature-not-verified.
type SignatureNotVerified struct{}

func (SignatureNotVerified) Meta() Meta {
	return Meta{
		ID:    "jwt/signature-not-verified",
		Title: "JWT signature not verified",
		CWE:   "CWE-347",
		Description: "Sends the identity's JWT with its payload changed under the original signature, with the signature " +
			"removed and with it corrupted; an accepted token proves the API reads claims it never verified.",
		Remediation: `Verify the signature of every token before reading any claim from it, on every request path.
- PyJWT: jwt.decode(token, key, algorithms=["HS256"]); options={"verify_signature": False} (or jwt.decode without a key in old versions) belongs only in debugging tools, never in request handling.
- golang-jwt: jwt.Parse or jwt.ParseWithClaims with a keyFunc, never parser.ParseUnverified to authenticate.
- jsonwebtoken (Express): jwt.verify(token, key, { algorithms: [...] }); jwt.decode() does not verify anything.
- Spring Security: let the resource server's JwtDecoder (NimbusJwtDecoder) authenticate requests; do not split the token and base64-decode its payload yourself.
- Behind a gateway that verifies tokens, make sure every route goes through it, or verify again in the service.`,
		References: []string{
			"https://cwe.mitre.org/data/definitions/347.html",
			"https://cwe.mitre.org/data/definitions/345.html",
			"https://www.rfc-editor.org/rfc/rfc8725#section-3.1",
		},
	}
}

func (c SignatureNotVerified) Run(ctx context.Context, env *Env) ([]finding.Finding, error) {
	meta := c.Meta()
	return forEachProbe(ctx, env, meta.ID, func(ctx context.Context, p *probe.Probe, id *identity.Identity) (*finding.Finding, error) {
		return runForgery(ctx, env, meta, p, id, func(_ context.Context, f *forgery) ([]variant, error) {
			changed, how := payloadChange(f.tok)
			return []variant{
				{
					name: "payload changed, original signature kept",
					made: fmt.Sprintf("the header and signature of %s's token over its claims with %s", id.Name, how),
					sign: func(claims map[string]any) (string, error) { return forge.Tampered(f.tok, changed(claims)) },
				},
				{
					name: "signature removed",
					made: fmt.Sprintf("the header and claims of %s's token with an empty signature segment (alg %s kept)", id.Name, f.tok.Alg),
					sign: func(claims map[string]any) (string, error) { return forge.Reassembled(f.tok, claims, nil) },
				},
				{
					name: "signature corrupted",
					made: fmt.Sprintf("%s's token with every bit of the signature's first byte flipped", id.Name),
					sign: func(claims map[string]any) (string, error) {
						return forge.Reassembled(f.tok, claims, forge.Corrupted(f.tok.Signature))
					},
				},
			}, nil
		})
	})
}

// payloadChange returns a change to the claims that any verifier would notice: exp a day later, or
// where the token has no exp, a claim added.
func payloadChange(t *forge.Token) (change func(map[string]any) map[string]any, how string) {
	if exp, ok := t.Expiry(); ok {
		return func(c map[string]any) map[string]any {
			c = maps.Clone(c)
			if e, ok := forge.ParseNumericDate(c["exp"]); ok {
				exp = e
			}
			c["exp"] = forge.NumericDate(exp.Add(24 * time.Hour))
			return c
		}, "exp moved 24 h later"
	}
	return func(c map[string]any) map[string]any {
		c = maps.Clone(c)
		c["tocsin_tampered"] = true
		return c
	}, `a claim "tocsin_tampered": true added`
}
