package forge

import (
	"strings"
	"testing"
)

// Tokens, JWKS and discovery documents are what a target answers: the parsers must refuse anything
// malformed with an error, never a panic, and what they accept must be usable.

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6MTc2NzIyNTYwMH0.c2ln",
		"eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
		"eyJhbGciOiJYWDk5OSJ9.eyJzdWIiOiJ4In0.c2ln",
		"eyJhbGciOjF9.eyJleHAiOjFlMzA4fQ.", "a.b.c", "..", "opaque",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := Parse(s)
		if err != nil {
			return
		}
		if tok.Header == nil || tok.Claims == nil || strings.Count(tok.SigningInput(), ".") != 1 {
			t.Fatalf("accepted %q as %+v", s, tok)
		}
		tok.Subject()
		tok.Expiry()
		tok.HMACHash()
		// Every forgery of an accepted token must be buildable from it.
		if _, err := Unsigned(tok, tok.CopyClaims(), "none"); err != nil {
			t.Fatalf("Unsigned(%q): %v", s, err)
		}
		if _, err := Tampered(tok, tok.CopyClaims()); err != nil {
			t.Fatalf("Tampered(%q): %v", s, err)
		}
		if _, err := Reassembled(tok, tok.CopyClaims(), Corrupted(tok.Signature)); err != nil {
			t.Fatalf("Reassembled(%q): %v", s, err)
		}
	})
}

func FuzzParseJWKS(f *testing.F) {
	for _, s := range []string{
		`{"keys":[{"kty":"RSA","kid":"1","n":"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw","e":"AQAB"}]}`,
		`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`,
		`{"keys":[{"kty":"oct","k":"AAAA"}]}`, `{}`, `null`, `[]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, err := ParseJWKS(data)
		if err != nil {
			return
		}
		for _, k := range keys {
			if k.Key == nil {
				t.Fatalf("a key without a key: %+v", k)
			}
			if _, err := KeyForms(k.Key); err != nil {
				t.Fatalf("key %+v has no forms: %v", k, err)
			}
		}
	})
}

func FuzzParseDiscovery(f *testing.F) {
	for _, s := range []string{
		`{"issuer":"https://id.example","jwks_uri":"https://id.example/jwks"}`,
		`{"jwks_uri":"/relative"}`, `{"jwks_uri":1}`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d, err := ParseDiscovery(data)
		if err != nil {
			return
		}
		if !strings.HasPrefix(d.JWKSURI, "http://") && !strings.HasPrefix(d.JWKSURI, "https://") {
			t.Fatalf("accepted jwks_uri %q", d.JWKSURI)
		}
	})
}
