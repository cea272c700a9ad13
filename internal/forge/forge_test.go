package forge

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func hs256(t testing.TB, claims jwt.MapClaims, key []byte) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func mustParse(t testing.TB, s string) *Token {
	t.Helper()
	tok, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%q): %v", s, err)
	}
	return tok
}

func TestParse(t *testing.T) {
	raw := hs256(t, jwt.MapClaims{"sub": "alice", "exp": 1767225600, "scope": "a b"}, []byte("k"))
	tok := mustParse(t, raw)
	if tok.Alg != "HS256" || tok.Subject() != "alice" || len(tok.Signature) != 32 {
		t.Errorf("token %+v", tok)
	}
	if exp, ok := tok.Expiry(); !ok || exp.Unix() != 1767225600 {
		t.Errorf("exp %v %v", exp, ok)
	}
	// Numbers survive a round trip as they were written.
	tampered, err := Tampered(tok, tok.CopyClaims())
	if err != nil || tampered != raw {
		t.Errorf("an unchanged payload re-encoded to %q, want %q (%v)", tampered, raw, err)
	}
	// An alg golang-jwt does not know is still a token to forge.
	odd := "eyJhbGciOiJYWDk5OSJ9.eyJzdWIiOiJ4In0.c2ln"
	if tok := mustParse(t, odd); tok.Alg != "XX999" || string(tok.Signature) != "sig" {
		t.Errorf("unknown alg: %+v", tok)
	}
	for _, bad := range []string{
		"", "abc", "a.b", "a.b.c.d", "opaque-token-value",
		"eyJhbGciOiJIUzI1NiJ9.bm90anNvbg.c2ln",                 // payload not JSON
		"WzFd.eyJzdWIiOiJ4In0.c2ln",                            // header an array
		"eyJhbGciOiJIUzI1NiJ9.bnVsbA.c2ln",                     // payload null
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0geyJ9.c2ln",       // two objects
		"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.!!",              // signature not base64url
		strings.Repeat("a", MaxTokenBytes) + ".eyJ9.c2ln",      // too long
		"eyJhbGciOiJIUzI1NiJ9.eyJleHAiOiJ0b21vcnJvdyJ9.c2ln.x", // four segments
	} {
		if IsJWT(bad) {
			t.Errorf("IsJWT(%.40q) = true", bad)
		}
	}
	if tok := mustParse(t, "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOiJ0b21vcnJvdyJ9.c2ln"); func() bool { _, ok := tok.Expiry(); return ok }() {
		t.Error("a string exp parsed as a date")
	}
}

func TestVariants(t *testing.T) {
	key := []byte("issuer-key")
	tok := mustParse(t, hs256(t, jwt.MapClaims{"sub": "alice", "exp": time.Now().Add(time.Hour).Unix()}, key))

	none, err := Unsigned(tok, tok.CopyClaims(), "None")
	if err != nil || !strings.HasSuffix(none, ".") {
		t.Fatalf("Unsigned: %q, %v", none, err)
	}
	if n := mustParse(t, none); n.Alg != "None" || n.Subject() != "alice" || len(n.Signature) != 0 || n.Header["typ"] != "JWT" {
		t.Errorf("unsigned %+v", n)
	}

	claims := tok.CopyClaims()
	claims["sub"] = "bob"
	tampered, err := Tampered(tok, claims)
	if err != nil {
		t.Fatal(err)
	}
	if tt := mustParse(t, tampered); tt.Subject() != "bob" || string(tt.Signature) != string(tok.Signature) {
		t.Errorf("tampered %+v", tt)
	}
	if _, err := jwt.Parse(tampered, func(*jwt.Token) (any, error) { return key, nil }); !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		t.Errorf("a tampered token verified: %v", err)
	}
	removed, _ := Reassembled(tok, tok.CopyClaims(), nil)
	if r := mustParse(t, removed); len(r.Signature) != 0 || !strings.HasSuffix(removed, ".") || r.SigningInput() != tok.SigningInput() {
		t.Errorf("signature removed: %q", removed)
	}
	corrupt, _ := Reassembled(tok, tok.CopyClaims(), Corrupted(tok.Signature))
	if c := mustParse(t, corrupt); c.Signature[0] != ^tok.Signature[0] || string(c.Signature[1:]) != string(tok.Signature[1:]) {
		t.Errorf("signature corrupted: %q", corrupt)
	}
	if len(Corrupted(nil)) != 0 {
		t.Error("Corrupted made a signature from nothing")
	}

	resigned, err := SignHMAC(tok, claims, "HS384", []byte("other"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jwt.Parse(resigned, func(*jwt.Token) (any, error) { return []byte("other"), nil }); err != nil {
		t.Errorf("SignHMAC made a token that does not verify: %v", err)
	}
	if _, err := SignHMAC(tok, claims, "RS256", nil); err == nil {
		t.Error("SignHMAC took RS256")
	}
}

func TestOwnKey(t *testing.T) {
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	claims := jwt.MapClaims{"sub": "alice", "iss": "https://issuer.example"}
	for alg, key := range map[string]any{"HS512": []byte("k"), "RS256": rk, "PS256": rk, "ES384": ek} {
		signed, err := jwt.NewWithClaims(jwt.GetSigningMethod(alg), claims).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		orig := mustParse(t, signed)
		orig.Header["kid"] = "issuer-key-1"
		u, err := k.Unissued(orig, orig.CopyClaims())
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		got := mustParse(t, u)
		if got.Alg != alg || got.Header["kid"] != "issuer-key-1" || got.Subject() != "alice" {
			t.Errorf("%s: unissued %+v", alg, got)
		}
	}

	orig := mustParse(t, hs256(t, claims, []byte("k")))
	orig.Header["kid"] = "k1"
	for _, alg := range []string{"ES256", "RS256"} {
		e, err := k.Embedded(orig, orig.CopyClaims(), alg)
		if err != nil {
			t.Fatal(err)
		}
		got := mustParse(t, e)
		if got.Header["kid"] != nil {
			t.Errorf("%s: kept the issuer's kid", alg)
		}
		// A verifier that trusts the jwk header verifies it: the key in the header signed it.
		b, _ := json.Marshal(map[string]any{"keys": []any{got.Header["jwk"]}})
		keys, err := ParseJWKS(b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := jwt.Parse(e, func(*jwt.Token) (any, error) { return keys[0].Key, nil }, jwt.WithValidMethods([]string{alg})); err != nil {
			t.Errorf("%s: the embedded key does not verify its token: %v", alg, err)
		}
	}
	if _, err := k.Embedded(orig, nil, "HS256"); err == nil {
		t.Error("Embedded took HS256")
	}
}

func TestOpaqueLike(t *testing.T) {
	for _, s := range []string{"3f9a0c", "AbC-12_x", "tok.en+/="} {
		got, err := OpaqueLike(s)
		if err != nil || len(got) != len(s) || got == s {
			t.Errorf("OpaqueLike(%q) = %q, %v", s, got, err)
		}
	}
	hexed, _ := OpaqueLike(strings.Repeat("0123456789abcdef", 4))
	if strings.Trim(hexed, "0123456789abcdef") != "" {
		t.Errorf("a hex token imitated as %q", hexed)
	}
	mixed, _ := OpaqueLike(strings.Repeat("aZ9-", 20))
	if strings.Trim(mixed, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
		t.Errorf("characters outside the token's kinds: %q", mixed)
	}
	if _, err := OpaqueLike(""); err == nil {
		t.Error("imitated nothing")
	}
}

func TestCrackHMAC(t *testing.T) {
	ctx := context.Background()
	claims := jwt.MapClaims{"sub": "alice"}
	tok := mustParse(t, hs256(t, claims, []byte("your-256-bit-secret")))
	found, tried, err := CrackHMAC(ctx, tok, BuiltIn())
	if err != nil || found == nil || string(found.Secret) != "your-256-bit-secret" || found.List != "the built-in list" {
		t.Fatalf("found %+v after %d, %v", found, tried, err)
	}
	lines := strings.Split(builtinSecrets, "\n")
	if lines[found.Entry-1] != "your-256-bit-secret" {
		t.Errorf("entry %d is %q", found.Entry, lines[found.Entry-1])
	}
	// The empty secret is the first entry.
	empty := mustParse(t, hs256(t, claims, []byte{}))
	if found, _, _ := CrackHMAC(ctx, empty, BuiltIn()); found == nil || found.Entry != 1 || len(found.Secret) != 0 {
		t.Errorf("empty secret: %+v", found)
	}

	random := make([]byte, 32)
	rand.Read(random)
	strong := mustParse(t, hs256(t, claims, random))
	found, tried, err = CrackHMAC(ctx, strong, BuiltIn())
	if err != nil || found != nil || tried != BuiltInSize() {
		t.Errorf("random key: found %+v, tried %d of %d, %v", found, tried, BuiltInSize(), err)
	}

	// A file list after the built-in one, past several batches, CRLF line ends.
	var b strings.Builder
	for i := range 3*crackBatch + 5 {
		fmt.Fprintf(&b, "candidate-%d\r\n", i)
	}
	b.WriteString("the-real-one\r\n")
	path := filepath.Join(t.TempDir(), "words.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	real := mustParse(t, hs256(t, claims, []byte("the-real-one")))
	found, _, err = CrackHMAC(ctx, real, BuiltIn(), FileWordlist(path))
	if err != nil || found == nil || found.List != path || found.Entry != 3*crackBatch+6 {
		t.Errorf("file list: %+v, %v", found, err)
	}
	if _, _, err := CrackHMAC(ctx, real, FileWordlist(filepath.Join(t.TempDir(), "missing"))); err == nil {
		t.Error("a missing wordlist was no error")
	}
	long := ReaderWordlist("long", strings.NewReader(strings.Repeat("x", maxSecretLine+1)))
	if _, _, err := CrackHMAC(ctx, real, long); err == nil || !strings.Contains(err.Error(), "line 1 is longer") {
		t.Errorf("an endless line: %v", err)
	}
	rs := mustParse(t, "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln")
	if _, _, err := CrackHMAC(ctx, rs, BuiltIn()); err == nil {
		t.Error("cracked an RS256 token")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if found, _, err := CrackHMAC(cancelled, strong, BuiltIn()); found != nil || !errors.Is(err, context.Canceled) {
		t.Errorf("interrupted: %+v %v", found, err)
	}
}

// The matcher is HMAC: the same answers as crypto/hmac, for keys shorter and longer than a block.
func TestHMACMatcher(t *testing.T) {
	msg := []byte("header.payload")
	for _, h := range []crypto.Hash{crypto.SHA256, crypto.SHA384, crypto.SHA512} {
		for _, n := range []int{0, 1, 31, 64, 65, 128, 129, 300} {
			key := make([]byte, n)
			rand.Read(key)
			mac := hmac.New(h.New, key)
			mac.Write(msg)
			m := newHMACMatcher(h, msg, mac.Sum(nil))
			if !m.matches(key) {
				t.Errorf("%v key of %d bytes: no match", h, n)
			}
			if m.matches(append(key, 'x')) {
				t.Errorf("%v key of %d bytes: a longer key matched", h, n)
			}
		}
	}
}

func TestJWKSAndKeyForms(t *testing.T) {
	rk, _ := rsa.GenerateKey(rand.Reader, 2048)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rj, _ := publicJWK(&rk.PublicKey)
	ej, _ := publicJWK(&ek.PublicKey)
	rj["kid"], ej["kid"] = "r1", "e1"
	doc, _ := json.Marshal(map[string]any{"keys": []any{rj, ej, map[string]any{"kty": "oct", "k": "c2VjcmV0"}, map[string]any{"kty": "OKP", "crv": "X25519", "x": "AAAA"}}})
	keys, err := ParseJWKS(doc)
	if err != nil || len(keys) != 2 || keys[0].Kid != "r1" || !rk.PublicKey.Equal(keys[0].Key) || !ek.PublicKey.Equal(keys[1].Key) {
		t.Fatalf("keys %+v, %v", keys, err)
	}
	forms, err := KeyForms(keys[0].Key)
	if err != nil || len(forms) != 5 || !strings.HasPrefix(string(forms[0].Bytes), "-----BEGIN PUBLIC KEY-----") || !strings.HasSuffix(string(forms[0].Bytes), "\n") ||
		strings.HasSuffix(string(forms[1].Bytes), "\n") {
		t.Errorf("forms %v, %v", forms, err)
	}
	if forms, _ := KeyForms(keys[1].Key); len(forms) != 3 {
		t.Errorf("EC forms: %d", len(forms))
	}
	for _, bad := range []string{
		`{"keys": []}`, `[]`, `{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}`,
		`{"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}`,
		`{"keys": [{"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}]}`,
		`{"keys": [{"kty": "EC", "crv": "P-999", "x": "AAAA", "y": "AAAA"}]}`,
	} {
		if _, err := ParseJWKS([]byte(bad)); err == nil {
			t.Errorf("ParseJWKS(%s) accepted it", bad)
		}
	}

	d, err := ParseDiscovery([]byte(`{"issuer": "https://id.example", "jwks_uri": "https://id.example/keys"}`))
	if err != nil || d.JWKSURI != "https://id.example/keys" {
		t.Errorf("discovery %+v %v", d, err)
	}
	if _, err := ParseDiscovery([]byte(`{"jwks_uri": "/keys"}`)); err == nil {
		t.Error("a relative jwks_uri was accepted")
	}
	if u, ok := DiscoveryURL("https://id.example/realms/x/"); !ok || u != "https://id.example/realms/x/.well-known/openid-configuration" {
		t.Errorf("DiscoveryURL = %q %v", u, ok)
	}
	for _, iss := range []string{"", "tocsin", "urn:x", "https://id.example/?q=1", "ftp://id.example"} {
		if _, ok := DiscoveryURL(iss); ok {
			t.Errorf("DiscoveryURL(%q) ok", iss)
		}
	}
}

// BenchmarkCrackHMAC measures offline cracking speed on this machine: run with
// go test -run '^$' -bench CrackHMAC ./internal/forge/ and read candidates/s.
func BenchmarkCrackHMAC(b *testing.B) {
	key := make([]byte, 32)
	rand.Read(key)
	raw := hs256(b, jwt.MapClaims{"sub": "alice", "scope": "items:read items:write", "exp": 1767225600, "iat": 1767224700,
		"iss": "https://issuer.example", "jti": "Q2FuZGlkYXRlcyBwZXIgc2Vjb25k"}, key)
	tok := mustParse(b, raw)
	var words strings.Builder
	for i := range b.N {
		fmt.Fprintf(&words, "candidate-secret-%d\n", i)
	}
	list := ReaderWordlist("bench", strings.NewReader(words.String()))
	b.ResetTimer()
	found, tried, err := CrackHMAC(context.Background(), tok, list)
	if err != nil || found != nil || tried != b.N {
		b.Fatalf("found %v, tried %d of %d, %v", found, tried, b.N, err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "candidates/s")
}
