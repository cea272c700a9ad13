package check

import (
	"fmt"
	"slices"
	"strings"

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
