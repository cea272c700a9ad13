package forge

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"strings"
)

// Bounds on what a JWKS may hold: real sets have a handful of keys.
const (
	maxJWKSKeys = 100
	minRSABits  = 512 // below this no one signs; above the max, parsing is a denial of service
	maxRSABits  = 16384
)

// JWK is one public key of a JSON Web Key Set (RFC 7517).
type JWK struct {
	Kid, Kty, Alg, Use string
	Key                crypto.PublicKey // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

type rawJWK struct {
	Kid string `json:"kid"`
	Kty string `json:"kty"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseJWKS reads a JWKS document ({"keys": [...]}) and returns the public keys it can use: RSA, EC
// (P-256, P-384, P-521) and Ed25519 keys. Keys of other types are skipped; a key of a known type
// that does not parse is an error, as is a document with no usable key.
func ParseJWKS(data []byte) ([]JWK, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	if len(doc.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("JWKS: %d keys, more than %d", len(doc.Keys), maxJWKSKeys)
	}
	var out []JWK
	for i, raw := range doc.Keys {
		var r rawJWK
		if err := json.Unmarshal(raw, &r); err != nil {
			return nil, fmt.Errorf("JWKS: key %d: %w", i, err)
		}
		key, err := r.publicKey()
		if err != nil {
			return nil, fmt.Errorf("JWKS: key %d (kid %q): %w", i, r.Kid, err)
		}
		if key != nil {
			out = append(out, JWK{Kid: r.Kid, Kty: r.Kty, Alg: r.Alg, Use: r.Use, Key: key})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("JWKS: no RSA, EC or Ed25519 public key")
	}
	return out, nil
}

func (r rawJWK) publicKey() (crypto.PublicKey, error) {
	b64 := func(name, s string) ([]byte, error) {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil || len(b) == 0 {
			return nil, fmt.Errorf("%s is not base64url", name)
		}
		return b, nil
	}
	switch r.Kty {
	case "RSA":
		n, err := b64("n", r.N)
		if err != nil {
			return nil, err
		}
		e, err := b64("e", r.E)
		if err != nil {
			return nil, err
		}
		mod := new(big.Int).SetBytes(n)
		if bits := mod.BitLen(); bits < minRSABits || bits > maxRSABits {
			return nil, fmt.Errorf("RSA modulus of %d bits", bits)
		}
		exp := new(big.Int).SetBytes(e)
		if !exp.IsInt64() || exp.Int64() < 3 || exp.Int64() > 1<<31-1 || exp.Bit(0) == 0 {
			return nil, errors.New("RSA exponent out of range")
		}
		return &rsa.PublicKey{N: mod, E: int(exp.Int64())}, nil
	case "EC":
		curve, size := map[string]elliptic.Curve{"P-256": elliptic.P256(), "P-384": elliptic.P384(), "P-521": elliptic.P521()}[r.Crv], 0
		if curve == nil {
			return nil, fmt.Errorf("unsupported curve %q", r.Crv)
		}
		size = (curve.Params().BitSize + 7) / 8
		x, err := b64("x", r.X)
		if err != nil {
			return nil, err
		}
		y, err := b64("y", r.Y)
		if err != nil {
			return nil, err
		}
		if len(x) != size || len(y) != size {
			return nil, fmt.Errorf("coordinates of %d and %d bytes, want %d", len(x), len(y), size)
		}
		return ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
	case "OKP":
		if r.Crv != "Ed25519" {
			return nil, nil // X25519 and others cannot sign
		}
		x, err := b64("x", r.X)
		if err != nil {
			return nil, err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("Ed25519 key of %d bytes", len(x))
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, nil // oct (a shared secret should never be published) and unknown types
}

// publicJWK is pub as a JWK object, for a jwk header.
func publicJWK(pub crypto.PublicKey) (map[string]any, error) {
	enc := base64.RawURLEncoding.EncodeToString
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		point, err := k.Bytes()
		if err != nil {
			return nil, err
		}
		size := (len(point) - 1) / 2
		return map[string]any{"kty": "EC", "crv": k.Curve.Params().Name, "x": enc(point[1 : 1+size]), "y": enc(point[1+size:])}, nil
	case *rsa.PublicKey:
		return map[string]any{"kty": "RSA", "n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes())}, nil
	}
	return nil, fmt.Errorf("no JWK form for %T", pub)
}

// KeyForm is one encoding of a public key, as a verifier confused about algorithms may use it as an
// HMAC secret.
type KeyForm struct {
	Name  string // e.g. "PEM (SubjectPublicKeyInfo)"
	Bytes []byte
}

// KeyForms returns the encodings of pub that verifiers load and then misuse as an HMAC secret: the
// PEM file as read (with its final newline) and without it, the DER bytes, and for RSA the PKCS #1
// forms too.
func KeyForms(pub crypto.PublicKey) ([]KeyForm, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	forms := []KeyForm{
		{"PEM (SubjectPublicKeyInfo, as a file ends: with a newline)", p},
		{"PEM (SubjectPublicKeyInfo, without the final newline)", []byte(strings.TrimSuffix(string(p), "\n"))},
		{"DER (SubjectPublicKeyInfo)", der},
	}
	if rk, ok := pub.(*rsa.PublicKey); ok {
		pk1 := x509.MarshalPKCS1PublicKey(rk)
		forms = append(forms,
			KeyForm{"PEM (PKCS #1 RSA PUBLIC KEY)", pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: pk1})},
			KeyForm{"DER (PKCS #1)", pk1})
	}
	return forms, nil
}

// Discovery is what tocsin reads of an OpenID Provider's configuration document.
type Discovery struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// ParseDiscovery reads an OpenID Connect discovery document (/.well-known/openid-configuration) and
// returns it when it names an absolute http(s) jwks_uri.
func ParseDiscovery(data []byte) (*Discovery, error) {
	var d Discovery
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, fmt.Errorf("discovery document: %w", err)
	}
	u, err := url.Parse(d.JWKSURI)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("discovery document: jwks_uri %q is not an absolute http(s) URL", d.JWKSURI)
	}
	return &d, nil
}

// DiscoveryURL is where an issuer publishes its OpenID configuration (OpenID Connect Discovery 1.0
// section 4): the issuer URL with /.well-known/openid-configuration appended. ok is false when iss
// is not an absolute http(s) URL.
func DiscoveryURL(iss string) (string, bool) {
	u, err := url.Parse(iss)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	return strings.TrimSuffix(iss, "/") + "/.well-known/openid-configuration", true
}
