package forge

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	"github.com/golang-jwt/jwt/v5"
)

// Header returns a copy of h with alg set to alg and the named fields removed.
func Header(h map[string]any, alg string, drop ...string) map[string]any {
	out := maps.Clone(h)
	if out == nil {
		out = map[string]any{}
	}
	for _, k := range drop {
		delete(out, k)
	}
	out["alg"] = alg
	return out
}

// Unsigned returns claims under t's header with alg set to alg ("none", "None", "NONE") and an
// empty signature: the token an API that honours alg none accepts.
func Unsigned(t *Token, claims map[string]any, alg string) (string, error) {
	tok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims(claims))
	tok.Header = Header(t.Header, alg)
	return tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
}

// Tampered returns t with its payload replaced by claims and its header and signature kept as they
// were: a signature that no longer matches.
func Tampered(t *Token, claims map[string]any) (string, error) {
	return Reassembled(t, claims, t.Signature)
}

// Reassembled returns t's header (as received) with claims as its payload and sig as its signature:
// empty for a token whose signature was removed, Corrupted(t.Signature) for one that does not match.
func Reassembled(t *Token, claims map[string]any, sig []byte) (string, error) {
	b, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	return t.parts[0] + "." + base64.RawURLEncoding.EncodeToString(b) + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// Corrupted returns a copy of sig with every bit of its first byte flipped; an empty sig stays empty.
func Corrupted(sig []byte) []byte {
	out := append([]byte(nil), sig...)
	if len(out) > 0 {
		out[0] ^= 0xff
	}
	return out
}

// Sign signs claims with method and key under header (whose alg it sets to method's).
func Sign(header, claims map[string]any, method jwt.SigningMethod, key any) (string, error) {
	tok := jwt.NewWithClaims(method, jwt.MapClaims(claims))
	tok.Header = Header(header, method.Alg())
	return tok.SignedString(key)
}

// SignHMAC signs claims under t's header with an HMAC algorithm (HS256, HS384, HS512) and secret.
func SignHMAC(t *Token, claims map[string]any, alg string, secret []byte) (string, error) {
	m, ok := jwt.GetSigningMethod(alg).(*jwt.SigningMethodHMAC)
	if !ok {
		return "", fmt.Errorf("%q is not an HMAC algorithm", alg)
	}
	return Sign(t.Header, claims, m, secret)
}

// Key is tocsin's own signing material for one run, made at random: no issuer has it, so an API
// that accepts what it signs verifies nothing, or trusts a key the token brought along.
type Key struct {
	secret []byte
	ec     *ecdsa.PrivateKey
	ed     ed25519.PrivateKey

	rsaOnce sync.Once // RSA keys take tens of milliseconds to make: only when a check needs one
	rsa     *rsa.PrivateKey
	rsaErr  error
}

// NewKey makes a Key.
func NewKey() (*Key, error) {
	k := &Key{secret: make([]byte, 32)}
	rand.Read(k.secret) // never fails (crypto/rand, Go 1.24+)
	var err error
	if k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if _, k.ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
		return nil, err
	}
	return k, nil
}

func (k *Key) rsaKey() (*rsa.PrivateKey, error) {
	k.rsaOnce.Do(func() { k.rsa, k.rsaErr = rsa.GenerateKey(rand.Reader, 2048) })
	return k.rsa, k.rsaErr
}

// Unissued signs claims under t's header with tocsin's own key, by t's algorithm where tocsin can
// (HS*, RS*, PS*, ES*, EdDSA), else HS256: a well-formed token that no issuer made.
func (k *Key) Unissued(t *Token, claims map[string]any) (string, error) {
	method := jwt.GetSigningMethod(t.Alg)
	var key any
	switch m := method.(type) {
	case *jwt.SigningMethodHMAC:
		key = k.secret
	case *jwt.SigningMethodRSA, *jwt.SigningMethodRSAPSS:
		rk, err := k.rsaKey()
		if err != nil {
			return "", err
		}
		key = rk
	case *jwt.SigningMethodECDSA:
		key = k.ec
		if m.CurveBits != 256 {
			curve := map[int]elliptic.Curve{384: elliptic.P384(), 521: elliptic.P521()}[m.CurveBits]
			if curve == nil {
				return "", fmt.Errorf("no curve for %s", t.Alg)
			}
			ek, err := ecdsa.GenerateKey(curve, rand.Reader)
			if err != nil {
				return "", err
			}
			key = ek
		}
	case *jwt.SigningMethodEd25519:
		key = k.ed
	default:
		method, key = jwt.SigningMethodHS256, k.secret
	}
	return Sign(t.Header, claims, method, key)
}

// Embedded signs claims with tocsin's own key by alg (ES256 or RS256) and carries that key's public
// half in the token's jwk header (RFC 7515 section 4.1.3), without t's kid: the token an API that
// takes the verification key from the token itself accepts.
func (k *Key) Embedded(t *Token, claims map[string]any, alg string) (string, error) {
	var method jwt.SigningMethod
	var key any
	var jwk map[string]any
	var err error
	switch alg {
	case "ES256":
		method, key = jwt.SigningMethodES256, k.ec
		jwk, err = publicJWK(&k.ec.PublicKey)
	case "RS256":
		var rk *rsa.PrivateKey
		if rk, err = k.rsaKey(); err == nil {
			method, key = jwt.SigningMethodRS256, rk
			jwk, err = publicJWK(&rk.PublicKey)
		}
	default:
		err = fmt.Errorf("no embedded-key variant for %q (use ES256 or RS256)", alg)
	}
	if err != nil {
		return "", err
	}
	h := Header(t.Header, alg, "kid", "jku", "x5u", "x5c")
	h["jwk"] = jwk
	return Sign(h, claims, method, key)
}

// OpaqueLike returns a random string as long as s and drawn from the kinds of characters s uses
// (lower and upper case letters, digits, and each other character it has): an opaque token of the
// same shape that no issuer made.
func OpaqueLike(s string) (string, error) {
	if s == "" {
		return "", errors.New("no token to imitate")
	}
	var set strings.Builder
	add := func(from, to byte) {
		for c := from; c <= to; c++ {
			set.WriteByte(c)
		}
	}
	hexOnly := strings.Trim(s, "0123456789abcdef") == ""
	switch {
	case hexOnly:
		add('0', '9')
		add('a', 'f')
	default:
		var lower, upper, digit bool
		other := map[rune]bool{}
		for _, r := range s {
			switch {
			case r >= 'a' && r <= 'z':
				lower = true
			case r >= 'A' && r <= 'Z':
				upper = true
			case r >= '0' && r <= '9':
				digit = true
			case r < 0x80 && r > ' ':
				other[r] = true
			}
		}
		if lower {
			add('a', 'z')
		}
		if upper {
			add('A', 'Z')
		}
		if digit {
			add('0', '9')
		}
		for r := range other {
			set.WriteRune(r)
		}
	}
	chars := set.String()
	if chars == "" {
		chars = "abcdefghijklmnopqrstuvwxyz0123456789"
	}
	out := make([]byte, len(s))
	for i := range out {
		out[i] = chars[randIndex(len(chars))]
	}
	return string(out), nil
}

// randIndex returns a uniform random number in [0, n).
func randIndex(n int) int {
	var b [1]byte
	for {
		rand.Read(b[:])
		// Reject the top of the byte range that would bias small results.
		if lim := 256 - 256%n; int(b[0]) < lim {
			return int(b[0]) % n
		}
	}
}
