package cli

import (
	"os"
	"path/filepath"
	"testing"
)

// Findings point at the config relative to the repository root: --source-root, else the git work
// tree that holds the config, else the working directory; a config outside keeps its given path.
func TestRelativeToRoot(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	for _, d := range []string{filepath.Join(repo, ".git"), filepath.Join(repo, "api"), filepath.Join(dir, "plain")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(filepath.Join(dir, "plain"))
	for _, tc := range []struct{ path, root, want string }{
		{filepath.Join(repo, "api", "tocsin.yaml"), "", "api/tocsin.yaml"},
		{filepath.Join(repo, "api", "tocsin.yaml"), filepath.Join(repo, "api"), "tocsin.yaml"},
		{"tocsin.yaml", "", "tocsin.yaml"},
		{filepath.Join("..", "elsewhere.yaml"), "", "../elsewhere.yaml"},
	} {
		got, err := relativeToRoot(tc.path, tc.root)
		if err != nil || got != tc.want {
			t.Errorf("relativeToRoot(%q, %q) = %q, %v; want %q", tc.path, tc.root, got, err, tc.want)
		}
	}
	if _, err := relativeToRoot("tocsin.yaml", filepath.Join(dir, "nope")); err == nil {
		t.Error("a --source-root that does not exist was accepted")
	}
}
