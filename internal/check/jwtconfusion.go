package check

// jwt/algorithm-confusion proves that an API verifying RS/PS/ES/EdDSA-signed JWTs lets the token
// pick HS256 and then uses the issuer's public key as the HMAC secret. tocsin fetches that public
// key the way a verifier does (the identity's jwks_url, or the issuer's OpenID discovery document,
// through its own client and on allowed origins only), signs the identity's claims with HS256 keyed
// with the key's usual encodings (PEM with and without its final newline, DER, and PKCS #1 for RSA),
// and sends each to a probe that accepts the real token and refuses a request without one. Anyone
// can read a public key: an accepted token is the proof.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/forge"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
)

// AlgorithmConfusion is the check jwt/algorithm-confusion.
type AlgorithmConfusion struct{}

func (AlgorithmConfusion) Meta() Meta {
	return Meta{
		ID:    "jwt/algorithm-confusion",
		Title: "JWT algorithm confusion (HS256 keyed with the public key)",
		CWE:   "CWE-347",
		Description: "Re-signs the identity's RS/ES-signed JWT with HS256, using the issuer's public key from its JWKS as the " +
			"HMAC secret; an accepted token proves the token chooses how it is verified.",
		Remediation: remediationAlgorithms,
		References: []string{
			"https://cwe.mitre.org/data/definitions/347.html",
			"https://cwe.mitre.org/data/definitions/327.html",
			"https://www.rfc-editor.org/rfc/rfc8725#section-2.1",
		},
	}
}

// maxConfusionKeys bounds the keys of a JWKS tried when the token names no kid.
const maxConfusionKeys = 3

func (c AlgorithmConfusion) Run(ctx context.Context, env *Env) ([]finding.Finding, error) {
	meta := c.Meta()
	return forEachProbe(ctx, env, meta.ID, func(ctx context.Context, p *probe.Probe, id *identity.Identity) (*finding.Finding, error) {
		return runForgery(ctx, env, meta, p, id, func(ctx context.Context, f *forgery) ([]variant, error) {
			if !f.tok.Asymmetric() {
				return nil, notApplicable("the token of identity %q is signed %s: algorithm confusion needs a token signed with a public-key algorithm (RS, PS, ES, EdDSA)", id.Name, f.tok.Alg)
			}
			keys, from, err := f.issuerKeys(ctx)
			if err != nil {
				return nil, err
			}
			if kid, _ := f.tok.Header["kid"].(string); kid != "" {
				var named []forge.JWK
				for _, k := range keys {
					if k.Kid == kid {
						named = append(named, k)
					}
				}
				if len(named) > 0 {
					keys = named
				}
			}
			keys = keys[:min(len(keys), maxConfusionKeys)]
			var vs []variant
			for _, k := range keys {
				forms, err := forge.KeyForms(k.Key)
				if err != nil {
					return nil, err
				}
				for _, form := range forms {
					which := "the issuer's public key"
					if k.Kid != "" {
						which += fmt.Sprintf(" (kid %q)", k.Kid)
					}
					vs = append(vs, variant{
						name: "HS256 keyed with the public key as " + form.Name,
						made: fmt.Sprintf("the claims of %s's token signed HS256 with %s from %s, encoded as %s, as the HMAC secret", id.Name, which, from, form.Name),
						sign: func(claims map[string]any) (string, error) { return forge.SignHMAC(f.tok, claims, "HS256", form.Bytes) },
					})
				}
			}
			return vs, nil
		})
	})
}

// issuerKeys fetches the public keys of the token's issuer: from the identity's jwks_url, or
// through the OpenID discovery document of the token's iss, then of the first origin. It returns
// where they came from. A JWKS that cannot be found skips the check; a spent budget or an interrupt
// is an error.
func (f *forgery) issuerKeys(ctx context.Context) ([]forge.JWK, string, error) {
	t := f.env.Target
	if u := f.id.JWKSURL; u != "" {
		body, err := f.fetch(ctx, u, "the JWKS (jwks_url)")
		if err != nil {
			return nil, "", f.noKeys(ctx, err)
		}
		keys, err := forge.ParseJWKS(body)
		if err != nil {
			return nil, "", f.noKeys(ctx, err)
		}
		return keys, "jwks_url " + t.Redactor.String(u), nil
	}
	var tried []string
	var candidates []string
	if iss, _ := f.tok.Claims["iss"].(string); iss != "" {
		if u, ok := forge.DiscoveryURL(iss); ok {
			candidates = append(candidates, u)
		}
	}
	if u, ok := forge.DiscoveryURL(t.Origins[0]); ok && (len(candidates) == 0 || candidates[0] != u) {
		candidates = append(candidates, u)
	}
	for _, u := range candidates {
		keys, jwksURI, err := f.discover(ctx, u)
		if err == nil {
			return keys, "the JWKS at " + t.Redactor.String(jwksURI) + " (from " + t.Redactor.String(u) + ")", nil
		}
		if fatal(ctx, err) {
			return nil, "", err
		}
		tried = append(tried, t.Redactor.String(err.Error()))
	}
	return nil, "", skip("no public key found for identity %q's tokens: %s (hint: set identities.%s.jwks_url to the issuer's JWKS, on an allowed origin)",
		f.id.Name, strings.Join(tried, "; "), f.id.Name)
}

func (f *forgery) discover(ctx context.Context, discoveryURL string) ([]forge.JWK, string, error) {
	body, err := f.fetch(ctx, discoveryURL, "the issuer's OpenID configuration")
	if err != nil {
		return nil, "", err
	}
	d, err := forge.ParseDiscovery(body)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", discoveryURL, err)
	}
	body, err = f.fetch(ctx, d.JWKSURI, "the issuer's JWKS")
	if err != nil {
		return nil, "", err
	}
	keys, err := forge.ParseJWKS(body)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", d.JWKSURI, err)
	}
	return keys, d.JWKSURI, nil
}

// noKeys turns a failure to read jwks_url into the check's verdict: an error when nothing could run
// after it, else skipped with what to change.
func (f *forgery) noKeys(ctx context.Context, err error) error {
	if fatal(ctx, err) {
		return err
	}
	hint := "check identities." + f.id.Name + ".jwks_url"
	if errors.Is(err, client.ErrOrigin) {
		hint = "add its origin to target.origins"
	}
	return skip("identity %q's jwks_url gave no public key: %v (hint: %s)", f.id.Name, f.env.Target.Redactor.Error(err), hint)
}
