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

// forgerySeverity is the rule for jwt/* findings where a forged token was accepted (docs/severity.md):
// critical when one claimed another identity's subject, since that is impersonation shown, not
// inferred; high otherwise, since whoever can forge a token for one subject can write any other.
func forgerySeverity(accepted []finding.Forged) (finding.Severity, string) {
	for _, a := range accepted {
		if a.OtherSubject {
			return finding.Critical, fmt.Sprintf("a forged token claiming another identity's subject (%s) was accepted: impersonation", a.Subject)
		}
	}
	return finding.High, "a forged token was accepted for the identity's own subject; forging one for any other subject takes nothing more"
}

// expirySeverity is the rule for jwt/expired-accepted: medium. An expired token still accepted
// stretches the life of a stolen one, but someone must have stolen it first.
func expirySeverity([]finding.Forged) (finding.Severity, string) {
	return finding.Medium, "a token past its exp was accepted: a stolen token lives longer than its issuer said"
}

// missingAuthSeverity is the rule for auth/missing: high, as anyone can call the operation; critical
// when the probe changes data.
func missingAuthSeverity(destructive bool) (finding.Severity, string) {
	if destructive {
		return finding.Critical, "an operation that changes data was performed without valid credentials"
	}
	return finding.High, "an operation that requires authentication answered without valid credentials"
}
