package check

// jwt/weak-hmac-secret proves that an API's HS256/384/512 tokens are signed with a secret someone can
// guess. It tries tocsin's built-in list of common and default secrets (then --jwt-wordlist) against
// the identity's real token offline, sending nothing; a secret that reproduces the signature is
// proven by a token forged with it for the same subject and accepted by a probe that accepts the
// real token and refuses a request without one. The secret found is a secret of the run: reports
// name it by its label and where it was in the list, never by its value.

import (
	"context"
	"fmt"
	"time"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/forge"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
)

// WeakHMACSecret is the check jwt/weak-hmac-secret.
type WeakHMACSecret struct{}

func (WeakHMACSecret) Meta() Meta {
	return Meta{
		ID:    "jwt/weak-hmac-secret",
		Title: "JWT HMAC secret found in a list of common secrets",
		CWE:   "CWE-1391",
		Description: "Cracks the identity's HS256/384/512 token offline with a built-in list of common and default secrets " +
			"(and --jwt-wordlist); a secret found is proven by a token forged with it and accepted.",
		Remediation: `Sign HMAC tokens with a random secret of at least 256 bits (RFC 7518 section 3.2) kept out of the code, and rotate it now: everyone who can read a list of common secrets can sign any token your API accepts.
- Generate it: python -c "import secrets; print(secrets.token_urlsafe(32))" or openssl rand -base64 32; load it from a secret store or the environment, never a literal in the source or an example config.
- PyJWT / Flask: jwt.encode(claims, os.environ["JWT_SECRET"], algorithm="HS256") with that random value; Flask-JWT-Extended: JWT_SECRET_KEY from the environment.
- golang-jwt: []byte from a secret store, 32 random bytes or more.
- jsonwebtoken (Express): jwt.sign(payload, process.env.JWT_SECRET); never the README's 'shhhhh'.
- Spring Security: NimbusJwtDecoder.withSecretKey(new SecretKeySpec(randomBytes, "HmacSHA256")); jjwt: Keys.hmacShaKeyFor(randomBytes).
- Better where several services verify tokens: an asymmetric algorithm (RS256, ES256, EdDSA), so that verifiers hold no signing secret.`,
		References: []string{
			"https://cwe.mitre.org/data/definitions/1391.html",
			"https://cwe.mitre.org/data/definitions/798.html",
			"https://www.rfc-editor.org/rfc/rfc8725#section-3.5",
			"https://www.rfc-editor.org/rfc/rfc7518#section-3.2",
		},
	}
}

func (c WeakHMACSecret) Run(ctx context.Context, env *Env) ([]finding.Finding, error) {
	meta := c.Meta()
	lists := []forge.Wordlist{forge.BuiltIn()}
	if env.JWTWordlist != "" {
		lists = append(lists, forge.FileWordlist(env.JWTWordlist))
	}
	return forEachProbe(ctx, env, meta.ID, func(ctx context.Context, p *probe.Probe, id *identity.Identity) (*finding.Finding, error) {
		return runForgery(ctx, env, meta, p, id, func(ctx context.Context, f *forgery) ([]variant, error) {
			if _, ok := f.tok.HMACHash(); !ok {
				return nil, notApplicable("the token of identity %q is signed %s, not HS256/384/512: there is no shared secret to guess", id.Name, f.tok.Alg)
			}
			start := time.Now()
			found, tried, err := forge.CrackHMAC(ctx, f.tok, lists...)
			if err != nil {
				return nil, err
			}
			took := time.Since(start)
			names := lists[0].Name
			if len(lists) > 1 {
				names += " and " + lists[1].Name
			}
			if found == nil {
				f.tl.add(time.Now(), finding.EventNote, fmt.Sprintf("offline: %d candidate secrets from %s tried in %s, none signs the token", tried, names, fmtMS(ms(took))), nil, time.Time{}, time.Time{})
				return nil, nil // not in the lists: nothing to send, and that is all this check can say
			}
			red := env.Target.Redactor
			secret := string(found.Secret)
			red.Add("secret", secret) // before anything can print it
			where := fmt.Sprintf("%s from %s, entry %d", red.Label(secret), found.List, found.Entry)
			f.tl.add(time.Now(), finding.EventNote, fmt.Sprintf("offline: found %s after %d candidates in %s", where, tried, fmtMS(ms(took))), nil, time.Time{}, time.Time{})
			f.note = fmt.Sprintf("The %s secret was found offline, with no request: %s (%d candidates tried).", f.tok.Alg, where, tried)
			return []variant{{
				name: f.tok.Alg + " re-signed with the secret found",
				made: fmt.Sprintf("the claims of %s's token signed %s with the secret found, %s", id.Name, f.tok.Alg, where),
				sign: func(claims map[string]any) (string, error) {
					return forge.SignHMAC(f.tok, claims, f.tok.Alg, found.Secret)
				},
			}}, nil
		})
	})
}
