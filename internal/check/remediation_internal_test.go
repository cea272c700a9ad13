package check

import (
	"strings"
	"testing"

	"github.com/tocsin/tocsin/internal/finding"
)

// A window whose cause the passes could not single out gets each candidate's fix, not only the
// generic advice; a named cause gets its own.
func TestRemediationForUndeterminedNamesEachCandidate(t *testing.T) {
	const generic = "Re-check authorization at the action."
	got := remediationFor(finding.CauseUndetermined, []string{finding.CauseLifetime, finding.CausePeriodic}, "revocation", generic)
	for _, want := range []string{"lifetime-from-first-use and periodic", "If a cache lifetime counted from the first use: The API caches", "If a periodic refresh: The API refreshes its revocation list", generic} {
		if !strings.Contains(got, want) {
			t.Errorf("remediation %q\nwant it to contain %q", got, want)
		}
	}
	if got := remediationFor(finding.CauseUndetermined, nil, "revocation", generic); got != generic {
		t.Errorf("no candidates: %q, want the generic advice", got)
	}
	if got := remediationFor(finding.CauseDelay, nil, "downgrade", generic); !strings.HasPrefix(got, "Role changes reach the API") || !strings.HasSuffix(got, generic) {
		t.Errorf("a named cause: %q", got)
	}
}
