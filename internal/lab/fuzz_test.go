package lab

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzVerify feeds arbitrary tokens to the JWT check every API request goes through. It must not
// panic, and must accept only tokens whose HS256 signature is the lab's over their own content.
func FuzzVerify(f *testing.F) {
	p := newIDP("http://127.0.0.1:1", time.Minute, slog.New(slog.NewTextHandler(io.Discard, nil)))
	good, err := jwt.NewWithClaims(jwt.SigningMethodHS256, tokenClaims{Scope: "items:read", RegisteredClaims: jwt.RegisteredClaims{
		Issuer: p.issuer, Subject: "alice", ID: "j1", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour)),
	}}).SignedString(p.signingKey)
	if err != nil {
		f.Fatal(err)
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "alice", "jti": "j1", "iss": p.issuer}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for _, seed := range []string{good, none, "", "a.b.c", good + "x", strings.Replace(good, ".", "..", 1)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		c, err := p.verify(token)
		if err != nil {
			return
		}
		if c.ID == "" || c.Subject == "" {
			t.Fatalf("accepted a token without jti or sub: %q", token)
		}
		i := strings.LastIndex(token, ".")
		if i < 0 || jwt.SigningMethodHS256.Verify(token[:i], mustDecodeSegment(t, token[i+1:]), p.signingKey) != nil {
			t.Fatalf("accepted a token the lab did not sign: %q", token)
		}
	})
}

func mustDecodeSegment(t *testing.T, s string) []byte {
	b, err := jwt.NewParser().DecodeSegment(s)
	if err != nil {
		t.Fatalf("accepted a token with an undecodable signature: %v", err)
	}
	return b
}
