package check

import (
	"fmt"
	"slices"
	"strings"

	"github.com/tocsin/tocsin/internal/finding"
)

// stalenessSeverity is the severity rule for staleness findings, documented in docs/severity.md. It
// weighs how long the old authorization can be honoured (the worst-case exposure under the window's
// cause, not only what one pass observed) and whether the probe changes data:
//
//	old state honoured                          read-only probe   destructive probe
//	still by a replay at max_window (never)     high              critical
//	worst case 1 s or more                      medium            high
//	worst case under 1 s                        low               medium
//
// A window of a second or more can be used by hand (replay a stolen token right after it is revoked);
// under a second it takes automation and timing, which lowers likelihood but not impact. A
// destructive probe raises the level by one because what it does cannot be taken back. Replays that
// stopped before max_window (the budget, the deadline) claim only as far as they reached.
func stalenessSeverity(w *finding.Window, destructive bool) (finding.Severity, string) {
	what := "read-only probe"
	bump := finding.Severity(0)
	if destructive {
		what, bump = "destructive probe", 1
	}
	exposure := w.WorstCaseMS
	switch {
	case w.Cause == finding.CauseNever && w.Reach != nil && w.Reach.StoppedBy == finding.StoppedMaxWindow:
		return finding.High + bump, fmt.Sprintf("still honoured by a replay at the max window (%s after the change), %s", fmtMS(w.Reach.LastReplayMS), what)
	case w.Cause == finding.CauseNever:
		if exposure >= 1000 {
			return finding.Medium + bump, fmt.Sprintf("honoured for at least %s before the replays stopped (%s), %s", fmtMS(exposure), w.Reach.StoppedBy, what)
		}
		return finding.Low + bump, fmt.Sprintf("honoured for at least %s before the replays stopped (%s), %s", fmtMS(exposure), w.Reach.StoppedBy, what)
	case exposure >= 1000:
		return finding.Medium + bump, fmt.Sprintf("worst-case exposure %s (%s), 1 s or more, %s", fmtMS(exposure), w.Cause, what)
	default:
		return finding.Low + bump, fmt.Sprintf("worst-case exposure %s (%s), under 1 s, %s", fmtMS(exposure), w.Cause, what)
	}
}

// authzSeverity is the severity rule for authorization findings between identities, documented
// in docs/severity.md. It weighs what was done: reading another's data is high; changing or
// deleting it, or calling a privileged operation that writes, is critical (it cannot be taken
// back, and a scan proved it on the first try). A mass assignment is rated by what it set:
// privilege (role, admin flags, scopes: the identity raised itself) is critical, ownership or
// money (owner, balance) high, any other property the API should own medium.
//
//	authz/bola, authz/bfla    read or call   high
//	                          write          critical
//	authz/mass-assignment     privilege      critical
//	                          ownership      high
//	                          other          medium
func authzSeverity(checkID, op string, properties []string) (finding.Severity, string) {
	if checkID == massAssignmentID {
		switch {
		case slices.ContainsFunc(properties, isPrivilegeProperty):
			return finding.Critical, "the identity set a privilege on itself (" + strings.Join(properties, ", ") + ")"
		case slices.ContainsFunc(properties, isOwnershipProperty):
			return finding.High, "the identity set ownership or value it may not (" + strings.Join(properties, ", ") + ")"
		}
		return finding.Medium, "the identity set properties the API should own (" + strings.Join(properties, ", ") + ")"
	}
	if checkID == bflaID {
		what := fmt.Sprintf("a privileged operation (%s) allowed to an identity without the privilege", op)
		if op == "read" || op == "call" {
			return finding.High, what
		}
		return finding.Critical, what + ", proven by reading back its effect"
	}
	if op == "read" || op == "call" {
		return finding.High, op + " of another identity's object"
	}
	return finding.Critical, op + " of another identity's object, proven by reading it back"
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
