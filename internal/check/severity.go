package check

import (
	"fmt"

	"github.com/tocsin/tocsin/internal/finding"
)

// stalenessSeverity is the severity rule for staleness findings, documented in docs/severity.md. It
// weighs how long the old authorization is honoured and whether the probe changes data:
//
//	old state honoured                     read-only probe   destructive probe
//	still at max_window (never refused)    high              critical
//	1 s or more                            medium            high
//	under 1 s                              low               medium
//
// A window of a second or more can be used by hand (replay a stolen token right after it is revoked);
// under a second it takes automation and timing, which lowers likelihood but not impact. A
// destructive probe raises the level by one because what it does cannot be taken back.
func stalenessSeverity(w *finding.Window, destructive bool) (finding.Severity, string) {
	what := "read-only probe"
	bump := finding.Severity(0)
	if destructive {
		what, bump = "destructive probe", 1
	}
	switch {
	case w.Never:
		return finding.High + bump, fmt.Sprintf("still honoured by a replay at the max window (%s after the change), %s", fmtMS(w.LastAcceptedMS), what)
	case w.FirstRejectedMS >= 1000:
		return finding.Medium + bump, "honoured for 1 s or more, " + what
	default:
		return finding.Low + bump, "honoured for under 1 s, " + what
	}
}
