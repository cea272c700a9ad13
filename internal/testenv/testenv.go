// Package testenv lets tests use programs from the machine (Flask, Chromium, PostgreSQL, Redis,
// nginx) and skip, saying how to get them, when they are missing: except under `make test` (and so
// CI), which sets TOCSIN_REQUIRE_DEPS=1 so that a missing dependency fails instead of hiding a test.
package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Required reports whether missing dependencies must fail tests rather than skip them.
func Required() bool { return os.Getenv("TOCSIN_REQUIRE_DEPS") == "1" }

// Missing stops the test because a dependency is missing: a skip with the hint, or a failure under
// `make test`.
func Missing(tb testing.TB, what, hint string) {
	tb.Helper()
	if Required() {
		tb.Fatalf("%s is missing, and TOCSIN_REQUIRE_DEPS=1 (make test) requires it: %s", what, hint)
	}
	tb.Skipf("%s is missing: %s (make test installs it)", what, hint)
}

// LookPath returns the path of an executable, trying name on PATH and then each of the fallbacks;
// when none exists it calls Missing.
func LookPath(tb testing.TB, hint, name string, fallbacks ...string) string {
	tb.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, f := range fallbacks {
		if st, err := os.Stat(f); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return f
		}
	}
	Missing(tb, name, hint)
	return ""
}

// NPMDir is where `make test` installs the npm packages some tests run (scripts/test-deps.sh):
// $TOCSIN_NPM_DIR, else ~/.cache/tocsin-npm. Nothing is installed into the repository.
func NPMDir() string {
	if d := os.Getenv("TOCSIN_NPM_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".cache", "tocsin-npm")
}
