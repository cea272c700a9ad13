package lab

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The lab's JWT verification flaws, one route each, each made the way real code makes it, beside the
// identity provider's own HS256 tokens:
//
//   - GET /jwt/none/whoami, GET /jwt/unverified/whoami and GET /jwt/embedded/whoami read the
//     identity provider's tokens. Vulnerable: the first takes a token whose alg is none (in any
//     case) as verified, the second decodes claims without checking the signature, the third
//     verifies with the key a token carries in its jwk header. Fixed: all three verify HS256 with
//     the provider's key, issuer and expiry.
//   - POST /legacy/login issues short-lived HS256 tokens (2 s by default) of a second, older login,
//     signed with jwt.io's example secret in the vulnerable flavour (a random one in the fixed);
//     GET /legacy/whoami verifies them correctly, GET /legacy/session ignores exp in the
//     vulnerable flavour.
//   - An OpenID provider under /sso (discovery, JWKS, POST /sso/login) issues RS256 tokens; GET
//     /sso/whoami lets the vulnerable flavour's token choose its algorithm and hands HS256 the
//     public key's PEM file as the secret (algorithm confusion). Fixed: RS256 only.
//
// Each whoami answers {"sub", "via"}: a forged token accepted shows whom it made the caller.

// legacyWeakSecret is what the vulnerable legacy login signs with: jwt.io's example secret, which
// ships in countless tutorials.
const legacyWeakSecret = "your-256-bit-secret"

// jwtRoutes holds the issuers and verifiers above.
type jwtRoutes struct {
	vulnerable bool
	idp        *idp
	origin     string

	legacyKey      []byte
	legacyLifetime time.Duration

	ssoOnce sync.Once // an RSA key takes tens of milliseconds: made on first use, not per lab
	ssoKey  *rsa.PrivateKey
	ssoPEM  []byte // the public key as its PEM file reads
}

const ssoKid = "lab-sso-1"

func newJWTRoutes(p *idp, origin string, vulnerable bool, legacyLifetime time.Duration) *jwtRoutes {
	j := &jwtRoutes{vulnerable: vulnerable, idp: p, origin: origin, legacyKey: randomKey(), legacyLifetime: legacyLifetime}
	if vulnerable {
		j.legacyKey = []byte(legacyWeakSecret)
	}
	return j
}

func (j *jwtRoutes) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /jwt/none/whoami", j.whoami("none", j.notRevoked(j.verifyNone)))
	mux.HandleFunc("GET /jwt/unverified/whoami", j.whoami("unverified", j.notRevoked(j.verifyUnverified)))
	mux.HandleFunc("GET /jwt/embedded/whoami", j.whoami("embedded", j.notRevoked(j.verifyEmbedded)))
	mux.HandleFunc("POST /legacy/login", j.legacyLogin)
	mux.HandleFunc("GET /legacy/whoami", j.whoami("legacy", j.verifyLegacy))
	mux.HandleFunc("GET /legacy/session", j.whoami("legacy-session", j.verifyLegacySession))
	mux.HandleFunc("GET /sso/.well-known/openid-configuration", j.ssoDiscovery)
	mux.HandleFunc("GET /sso/jwks.json", j.ssoJWKS)
	mux.HandleFunc("POST /sso/login", j.ssoLogin)
	mux.HandleFunc("GET /sso/whoami", j.whoami("sso", j.verifySSO))
}

// whoami answers who a verified token says the caller is.
func (j *jwtRoutes) whoami(via string, verify func(token string) (jwt.MapClaims, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := bearerToken(r)
		if !ok {
			writeInvalidToken(w, "missing bearer token")
			return
		}
		claims, err := verify(token)
		if err != nil {
			writeInvalidToken(w, "invalid token")
			return
		}
		sub, _ := claims["sub"].(string)
		writeJSON(w, http.StatusOK, map[string]string{"sub": sub, "via": via})
	}
}

// notRevoked adds to a verifier of the identity provider's tokens the check that the token's ID
// (jti) has not been revoked, asked of the provider at once: these routes have one planted flaw
// each, in how they verify a token, and none in revocation (a forged token that keeps the real
// one's jti is refused once that is revoked, like the real one).
func (j *jwtRoutes) notRevoked(verify func(token string) (jwt.MapClaims, error)) func(string) (jwt.MapClaims, error) {
	return func(token string) (jwt.MapClaims, error) {
		claims, err := verify(token)
		if err != nil {
			return nil, err
		}
		if id, _ := claims["jti"].(string); id != "" && j.idp.revokedAsOf(id, time.Now()) {
			return nil, errors.New("token revoked")
		}
		return claims, nil
	}
}

// verifyIDP is the correct verification of the identity provider's tokens: HS256 with its key, its
// issuer, an exp not passed.
func (j *jwtRoutes) verifyIDP(token string) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return j.idp.signingKey, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(j.idp.issuer), jwt.WithExpirationRequired())
	return claims, err
}

// checkClaims validates what the vulnerable verifiers do check: issuer and expiry.
func (j *jwtRoutes) checkClaims(claims jwt.MapClaims, issuer string) error {
	return jwt.NewValidator(jwt.WithIssuer(issuer), jwt.WithExpirationRequired()).Validate(claims)
}

func unverifiedClaims(token string) (jwt.MapClaims, *jwt.Token, error) {
	claims := jwt.MapClaims{}
	t, _, err := jwt.NewParser().ParseUnverified(token, claims)
	if errors.Is(err, jwt.ErrTokenUnverifiable) && t != nil && t.Header != nil {
		err = nil // an alg golang-jwt does not implement ("None"): the header and claims are read
	}
	return claims, t, err
}

// verifyNone: "unsigned tokens come from our own job runner" taken as verified, in any case of none.
func (j *jwtRoutes) verifyNone(token string) (jwt.MapClaims, error) {
	if _, t, err := unverifiedClaims(token); j.vulnerable && err == nil {
		if alg, _ := t.Header["alg"].(string); strings.EqualFold(alg, "none") {
			return j.verifyUnverified(token)
		}
	}
	return j.verifyIDP(token)
}

// verifyUnverified decodes and checks the claims, and never the signature.
func (j *jwtRoutes) verifyUnverified(token string) (jwt.MapClaims, error) {
	if !j.vulnerable {
		return j.verifyIDP(token)
	}
	claims, _, err := unverifiedClaims(token)
	if err != nil {
		return nil, err
	}
	return claims, j.checkClaims(claims, j.idp.issuer)
}

// verifyEmbedded trusts the key in a token's jwk header when there is one.
func (j *jwtRoutes) verifyEmbedded(token string) (jwt.MapClaims, error) {
	if !j.vulnerable {
		return j.verifyIDP(token)
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		if jwk, ok := t.Header["jwk"].(map[string]any); ok {
			return publicKeyFromJWK(jwk)
		}
		return j.idp.signingKey, nil
	}, jwt.WithValidMethods([]string{"HS256", "RS256", "ES256"}), jwt.WithIssuer(j.idp.issuer), jwt.WithExpirationRequired())
	return claims, err
}

// publicKeyFromJWK reads an RSA or P-256 public key from a JWK.
func publicKeyFromJWK(jwk map[string]any) (any, error) {
	field := func(name string) ([]byte, error) {
		s, _ := jwk[name].(string)
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) == 0 || len(b) > 1024 {
			return nil, errors.New("bad jwk field " + name)
		}
		return b, nil
	}
	switch jwk["kty"] {
	case "RSA":
		n, err := field("n")
		if err != nil {
			return nil, err
		}
		e, err := field("e")
		if err != nil || len(e) > 4 {
			return nil, errors.New("bad jwk exponent")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
	case "EC":
		x, err := field("x")
		if err != nil {
			return nil, err
		}
		y, err := field("y")
		if err != nil || jwk["crv"] != "P-256" || len(x) != 32 || len(y) != 32 {
			return nil, errors.New("bad jwk point")
		}
		return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	}
	return nil, errors.New("unsupported jwk")
}

// legacyLogin is POST /legacy/login {"username", "password"}: a short-lived HS256 token.
func (j *jwtRoutes) legacyLogin(w http.ResponseWriter, r *http.Request) {
	subject, ok := j.login(w, r)
	if !ok {
		return
	}
	now := time.Now()
	claims := jwt.MapClaims{"sub": subject, "iss": j.origin + "/legacy", "iat": now.Unix(), "exp": now.Add(j.legacyLifetime).Unix(), "jti": randomText()}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(j.legacyKey)
	j.writeToken(w, token, j.legacyLifetime, err)
}

func (j *jwtRoutes) login(w http.ResponseWriter, r *http.Request) (string, bool) {
	body, ok := readCredentials(w, r)
	if !ok {
		return "", false
	}
	if !j.idp.checkPassword(body.Username, body.Password) {
		writeError(w, http.StatusUnauthorized, "invalid_credentials", "wrong username or password")
		return "", false
	}
	return body.Username, true
}

func (j *jwtRoutes) writeToken(w http.ResponseWriter, token string, lifetime time.Duration, err error) {
	if err != nil {
		writeError(w, http.StatusInternalServerError, "server_error", "could not issue a token")
		return
	}
	w.Header().Set("Pragma", "no-cache")
	writeJSON(w, http.StatusOK, map[string]any{"token": token, "expires_in": int(lifetime / time.Second)})
}

func (j *jwtRoutes) verifyLegacy(token string) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return j.legacyKey, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(j.origin+"/legacy"), jwt.WithExpirationRequired())
	return claims, err
}

// verifyLegacySession checks the signature and the issuer, and in the vulnerable flavour not exp:
// "sessions last as long as the browser is open".
func (j *jwtRoutes) verifyLegacySession(token string) (jwt.MapClaims, error) {
	if !j.vulnerable {
		return j.verifyLegacy(token)
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return j.legacyKey, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithoutClaimsValidation())
	if err != nil {
		return nil, err
	}
	if iss, _ := claims["iss"].(string); iss != j.origin+"/legacy" {
		return nil, errors.New("wrong issuer")
	}
	return claims, nil
}

func (j *jwtRoutes) sso() (*rsa.PrivateKey, []byte) {
	j.ssoOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic("lab: RSA key: " + err.Error()) // crypto/rand does not fail
		}
		der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		j.ssoKey, j.ssoPEM = k, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	})
	return j.ssoKey, j.ssoPEM
}

func (j *jwtRoutes) ssoDiscovery(w http.ResponseWriter, _ *http.Request) {
	iss := j.origin + "/sso"
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer": iss, "jwks_uri": iss + "/jwks.json", "token_endpoint": iss + "/login",
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
}

func (j *jwtRoutes) ssoJWKS(w http.ResponseWriter, _ *http.Request) {
	k, _ := j.sso()
	enc := base64.RawURLEncoding.EncodeToString
	writeJSON(w, http.StatusOK, map[string]any{"keys": []any{map[string]string{
		"kty": "RSA", "kid": ssoKid, "use": "sig", "alg": "RS256",
		"n": enc(k.N.Bytes()), "e": enc(big.NewInt(int64(k.E)).Bytes()),
	}}})
}

func (j *jwtRoutes) ssoLogin(w http.ResponseWriter, r *http.Request) {
	subject, ok := j.login(w, r)
	if !ok {
		return
	}
	k, _ := j.sso()
	now := time.Now()
	lifetime := j.idp.lifetime
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": subject, "iss": j.origin + "/sso", "iat": now.Unix(), "exp": now.Add(lifetime).Unix()})
	t.Header["kid"] = ssoKid
	token, err := t.SignedString(k)
	j.writeToken(w, token, lifetime, err)
}

// verifySSO: vulnerable, the token names its algorithm and the one key the service has is handed to
// whichever it names, so HS256 gets the public key's PEM file as its secret.
func (j *jwtRoutes) verifySSO(token string) (jwt.MapClaims, error) {
	k, pemFile := j.sso()
	algs := []string{"RS256"}
	if j.vulnerable {
		algs = append(algs, "HS256")
	}
	claims := jwt.MapClaims{}
	_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		if _, hmac := t.Method.(*jwt.SigningMethodHMAC); hmac {
			return pemFile, nil
		}
		return &k.PublicKey, nil
	}, jwt.WithValidMethods(algs), jwt.WithIssuer(j.origin+"/sso"), jwt.WithExpirationRequired())
	return claims, err
}

// checkPassword reports whether password is user's, in constant time.
func (p *idp) checkPassword(user, password string) bool {
	p.mu.Lock()
	want, ok := p.passwords[user]
	p.mu.Unlock()
	return ok && subtle.ConstantTimeCompare([]byte(password), []byte(want)) == 1
}
