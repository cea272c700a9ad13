package config_test

import (
	"strings"
	"testing"

	"github.com/tocsin/tocsin/internal/config"
)

// client_id is needed only where the endpoint authenticates a client: the client_credentials grant.
// A password grant or an RFC 7009 revocation without one is valid, for tocsin and for the schema an
// editor checks the file with, and the two agree where it is missing.
func TestClientIDOnlyWhereAClientAuthenticates(t *testing.T) {
	sch := compileConfigSchema(t)
	noRevokeClient := config.EditBase("        url: https://api.example.com/oauth/revoke\n        client_id: scanner\n",
		"        url: https://api.example.com/oauth/revoke\n")
	passwordNoClient := config.EditBase("        grant: client_credentials\n        token_url: https://api.example.com/oauth/token\n        client_id: scanner\n        client_secret: s3cret\n",
		"        grant: password\n        token_url: https://api.example.com/oauth/token\n        username: alice\n        password: pw\n")
	credentialsNoClient := config.EditBase("        client_id: scanner\n        client_secret: s3cret\n", "        client_secret: s3cret\n")
	for _, tc := range []struct {
		name, yaml string
		valid      bool
	}{
		{"rfc7009 without client_id", noRevokeClient, true},
		{"password grant without client_id", passwordNoClient, true},
		{"client_credentials without client_id", credentialsNoClient, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse("tocsin.yaml", []byte(tc.yaml), func(string) (string, bool) { return "", false })
			if tc.valid && err != nil {
				t.Errorf("tocsin refuses it: %v", err)
			}
			if !tc.valid && (err == nil || !strings.Contains(err.Error(), "missing client_id")) {
				t.Errorf("tocsin: %v, want missing client_id", err)
			}
			if serr := validateYAML(t, sch, []byte(tc.yaml)); (serr == nil) != tc.valid {
				t.Errorf("schema says %v, want valid=%v", serr, tc.valid)
			}
		})
	}
}
