package config

import (
	"errors"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, and that every failure is an *Error with at
// least one problem.
func FuzzParse(f *testing.F) {
	f.Add(readExample(f))
	f.Add([]byte(base))
	f.Add([]byte(""))
	f.Add([]byte("version: [1\n"))
	f.Add([]byte("a: &x [*x]\nb: *x\n"))
	f.Add([]byte("probes:\n  p: &p {setup: *p, verify: *p, path: /x}\n"))
	f.Add([]byte("<<: {version: 1}\nversion: 1\n"))
	f.Add([]byte("version: !!str 1\ntarget: {origins: [\"${A\"]}\n"))
	f.Add([]byte("---\n---\nversion: 1\n...\n"))
	f.Add([]byte("identities:\n  a:\n    token:\n      static: |\n        ${X}\n"))
	f.Add([]byte("limits: {rate: .inf, timeout: -1s, request_budget: 99999999999999999999}\n"))
	for _, h := range hostileConfigs() {
		f.Add(h.data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := Parse("fuzz.yaml", data, func(name string) (string, bool) { return "v-" + name, name != "UNSET" })
		if err == nil {
			return
		}
		var ce *Error
		if !errors.As(err, &ce) || len(ce.Problems) == 0 {
			t.Fatalf("error is not a non-empty *Error: %#v", err)
		}
	})
}
