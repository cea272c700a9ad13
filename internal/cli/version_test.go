package cli

import (
	"runtime/debug"
	"testing"
)

// --version names the module version and the revision, so that a report can be traced to its code.
func TestDescribeBuild(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/tocsin/tocsin", Version: "v0.0.0-20260301120000-0123456789ab+dirty"},
		Settings: []debug.BuildSetting{{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-03-01T12:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}
	want := "tocsin v0.0.0-20260301120000-0123456789ab+dirty (revision 0123456789abcdef0123456789abcdef01234567, committed 2026-03-01T12:00:00Z, with local changes, built with go1.26.8)"
	if got := describeBuild(bi); got != want {
		t.Errorf("describeBuild:\n got %s\nwant %s", got, want)
	}
	if got := describeBuild(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}); got != "tocsin dev" {
		t.Errorf("a build with no version or revision: %q, want %q", got, "tocsin dev")
	}
	defer func(v string) { Version = v }(Version)
	Version = "v1.2.3"
	if got := describeBuild(bi); got[:len("tocsin v1.2.3 (revision 0123")] != "tocsin v1.2.3 (revision 0123" {
		t.Errorf("with -X Version: %q", got)
	}
}
