// Package forge reads JSON Web Tokens without trusting them and makes the tokens that tocsin's jwt/*
// and auth/missing checks send in place of an identity's real one: unsigned (alg none), tampered
// (claims changed, signature kept), re-signed with a key an attacker can know (a cracked HMAC
// secret, the issuer's public key used as an HMAC secret, tocsin's own key carried in the header),
// or made by no issuer at all. It also cracks HMAC secrets offline and reads JWKS and OpenID
// discovery documents.
//
// Tokens, JWKS and discovery documents come from the target, so every parser here treats its input
// as hostile: bounded sizes, strict shapes, errors instead of panics (see the fuzz tests). Signing
// and parsing go through golang-jwt; what it cannot express (a header whose alg is "None", a payload
// changed under a kept signature) is written here with the same base64url segments.
package forge

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenBytes bounds the tokens Parse reads: real access tokens are a few KiB at most.
const MaxTokenBytes = 64 << 10

// Token is a JWT as it was received, decoded but not verified.
type Token struct {
	Raw    string
	Header map[string]any
	// Claims are the payload's claims; numbers stay json.Number, so that a forged copy carries
	// exp: 1767225600 and not 1.7672256e+09.
	Claims    map[string]any
	Alg       string // the header's alg; "" when absent or not a string
	Signature []byte
	parts     [3]string
}

// Parse decodes a compact JWS (header.payload.signature) without verifying it. It fails on anything
// that is not one: a wrong number of segments, bad base64url, a header or payload that is not a JSON
// object, an oversized token.
func Parse(s string) (*Token, error) {
	if len(s) > MaxTokenBytes {
		return nil, fmt.Errorf("token of %d bytes is over %d", len(s), MaxTokenBytes)
	}
	if strings.Count(s, ".") != 2 {
		return nil, errors.New("not a JWT: want three dot-separated segments")
	}
	claims := jwt.MapClaims{}
	t, parts, err := jwt.NewParser(jwt.WithJSONNumber()).ParseUnverified(s, claims)
	// An alg golang-jwt does not implement still leaves a token to read: forging it is our business.
	if err != nil && !errors.Is(err, jwt.ErrTokenUnverifiable) {
		return nil, fmt.Errorf("not a JWT: %w", err)
	}
	if t == nil || t.Header == nil || len(parts) != 3 {
		return nil, errors.New("not a JWT: the header is not a JSON object")
	}
	if claims == nil {
		return nil, errors.New("not a JWT: the payload is not a JSON object")
	}
	// golang-jwt decodes the claims with a json.Decoder, which stops after the first value; a
	// payload with more after it is not a JWT.
	if payload, derr := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "=")); derr != nil || !singleObject(payload) {
		return nil, errors.New("not a JWT: the payload is not one JSON object")
	}
	sig := t.Signature
	if err != nil { // unverifiable: golang-jwt stopped before the signature
		if sig, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[2], "=")); err != nil {
			return nil, fmt.Errorf("not a JWT: signature: %w", err)
		}
	}
	alg, _ := t.Header["alg"].(string)
	return &Token{Raw: s, Header: t.Header, Claims: claims, Alg: alg, Signature: sig, parts: [3]string(parts)}, nil
}

func singleObject(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	var v map[string]json.RawMessage
	if err := dec.Decode(&v); err != nil || v == nil {
		return false
	}
	_, err := dec.Token()
	return err == io.EOF // nothing after the object
}

// IsJWT reports whether s parses as a JWT.
func IsJWT(s string) bool {
	_, err := Parse(s)
	return err == nil
}

// SigningInput is header.payload exactly as received: what the signature covers.
func (t *Token) SigningInput() string { return t.parts[0] + "." + t.parts[1] }

// Subject is the sub claim, or "".
func (t *Token) Subject() string {
	s, _ := t.Claims["sub"].(string)
	return s
}

// Expiry is the exp claim; ok is false when it is absent or not a number.
func (t *Token) Expiry() (exp time.Time, ok bool) {
	return ParseNumericDate(t.Claims["exp"])
}

// ParseNumericDate reads a claim value as a NumericDate (seconds since the epoch).
func ParseNumericDate(v any) (time.Time, bool) {
	var f float64
	switch n := v.(type) {
	case json.Number:
		var err error
		if f, err = n.Float64(); err != nil {
			return time.Time{}, false
		}
	case float64:
		f = n
	default:
		return time.Time{}, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// CopyClaims returns a copy of the claims that a forgery may change.
func (t *Token) CopyClaims() map[string]any { return maps.Clone(t.Claims) }

// HMACHash returns the hash of an HS256/384/512 token.
func (t *Token) HMACHash() (crypto.Hash, bool) {
	switch t.Alg {
	case "HS256":
		return crypto.SHA256, true
	case "HS384":
		return crypto.SHA384, true
	case "HS512":
		return crypto.SHA512, true
	}
	return 0, false
}

// Asymmetric reports whether the token is signed with a public-key algorithm (RS, PS, ES, EdDSA):
// one whose verification key is public.
func (t *Token) Asymmetric() bool {
	return strings.HasPrefix(t.Alg, "RS") || strings.HasPrefix(t.Alg, "PS") || strings.HasPrefix(t.Alg, "ES") || t.Alg == "EdDSA"
}

// NumericDate is t as a JWT NumericDate claim value.
func NumericDate(t time.Time) json.Number { return json.Number(fmt.Sprint(t.Unix())) }
