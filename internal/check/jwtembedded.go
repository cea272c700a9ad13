package check

// jwt/embedded-key proves that an API verifies a JWT with a key the token itself carries: tocsin
// signs the identity's claims with its own new key (ES256, and RS256) and puts that key's public
// half in the token's jwk header (RFC 7515 section 4.1.3), the pattern of CVE-2018-0114. Nobody but
// tocsin has that key, so an API that accepts the token, where it accepts the real one and refuses
// a request without one, trusts whatever key a token names.

import (
	"context"
	"fmt"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/forge"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
)

// EmbeddedKey is the check jwt/embedded-key.
type EmbeddedKey struct{}

func (EmbeddedKey) Meta() Meta {
	return Meta{
		ID:    "jwt/embedded-key",
		Title: "JWT verified with the key it carries (jwk header)",
		CWE:   "CWE-347",
		Description: "Signs the identity's claims with a key tocsin made and carries that key in the token's jwk header; " +
			"an accepted token proves the API takes the verification key from the token.",
		Remediation: remediationAlgorithms,
		References: []string{
			"https://cwe.mitre.org/data/definitions/347.html",
			"https://www.rfc-editor.org/rfc/rfc8725#section-3.10",
			"https://nvd.nist.gov/vuln/detail/CVE-2018-0114",
		},
	}
}

func (c EmbeddedKey) Run(ctx context.Context, env *Env) ([]finding.Finding, error) {
	meta := c.Meta()
	key, err := forge.NewKey()
	if err != nil {
		return nil, err
	}
	return forEachProbe(ctx, env, meta.ID, func(ctx context.Context, p *probe.Probe, id *identity.Identity) (*finding.Finding, error) {
		return runForgery(ctx, env, meta, p, id, func(_ context.Context, f *forgery) ([]variant, error) {
			var vs []variant
			for _, alg := range []string{"ES256", "RS256"} {
				vs = append(vs, variant{
					name: fmt.Sprintf("%s with tocsin's key in the jwk header", alg),
					made: fmt.Sprintf("the claims of %s's token signed %s with a key tocsin made for this scan, its public half in the header's jwk, the issuer's kid removed", id.Name, alg),
					sign: func(claims map[string]any) (string, error) { return key.Embedded(f.tok, claims, alg) },
				})
			}
			return vs, nil
		})
	})
}
