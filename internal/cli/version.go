package cli

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X github.com/tocsin/tocsin/internal/cli.Version=v1.2.3";
// otherwise the module version from the build info (a build from a git checkout gets a pseudo-version
// such as v0.0.0-20260301120000-0123456789ab), or "dev".
var Version = ""

// version is the short version reports carry.
func version() string {
	bi, _ := debug.ReadBuildInfo()
	return moduleVersion(bi)
}

func moduleVersion(bi *debug.BuildInfo) string {
	if Version != "" {
		return Version
	}
	if bi != nil && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// versionLine is what --version and `tocsin version` print: the module version and the revision the
// binary was built from, with its commit time and whether the work tree had local changes.
func versionLine() string {
	bi, _ := debug.ReadBuildInfo()
	return describeBuild(bi)
}

func describeBuild(bi *debug.BuildInfo) string {
	line := "tocsin " + moduleVersion(bi)
	if bi == nil {
		return line
	}
	var rev, at, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	var parts []string
	if rev != "" {
		parts = append(parts, "revision "+rev)
	}
	if at != "" {
		parts = append(parts, "committed "+at)
	}
	if modified == "true" {
		parts = append(parts, "with local changes")
	}
	if bi.GoVersion != "" {
		parts = append(parts, "built with "+bi.GoVersion)
	}
	if len(parts) > 0 {
		line += " (" + strings.Join(parts, ", ") + ")"
	}
	return line
}

func newVersionCmd(s *stdio) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print tocsin's version and the revision it was built from",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			_, err := fmt.Fprintln(s.out, versionLine())
			return err
		},
	}
}
