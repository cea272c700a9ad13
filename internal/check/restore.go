package check

import (
	"context"
	"fmt"
	"time"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/identity"
)

// Restoring an identity is what a scan owes the target: a check that downgraded alice must give her
// privilege back however the check ends (a finding, an error, an interrupt, a spent budget). So a
// restore is sent outside the request budget and after the scan's context ended, is retried with
// backoff for up to restoreFor, and if it still fails it is recorded in the ledger (the report shows
// it first, with the request to run by hand, and the scan is incomplete) and alerted even with
// --quiet.

// restoreFor bounds the retries of one restore; a var for tests (SetRestoreFor).
var restoreFor = 60 * time.Second

// SetRestoreFor shortens how long a failing restore is retried, and returns what puts the old value
// back. For tests only, and set before a scan starts: this package's, and the command-line scripts of
// cmd/tocsin, whose test binary calls it when TOCSIN_TEST_RESTORE_FOR is set (cmd/tocsin/main_test.go)
// so that a scan whose restore fails ends in seconds. Nothing in the tool calls it: a real scan always
// retries for 60 s, and no flag or variable of the tocsin binary changes that.
func SetRestoreFor(d time.Duration) (restore func()) {
	old := restoreFor
	restoreFor = d
	return func() { restoreFor = old }
}

// restoreFirstWait is the first backoff between attempts; each later one doubles, up to 8 s.
var restoreFirstWait = 250 * time.Millisecond

// retryRestore runs the identity's restore hook until it is acknowledged or restoreFor has passed.
func retryRestore(ctx context.Context, ident *identity.Identity) error {
	ctx, cancel := context.WithTimeout(client.Unmetered(context.WithoutCancel(ctx)), restoreFor)
	defer cancel()
	wait := restoreFirstWait
	var err error
	for attempt := 1; ; attempt++ {
		if err = ident.Restore.Run(ctx, identity.Token{}); err == nil {
			return nil
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return fmt.Errorf("restore failed %d times in %s; last: %w", attempt, restoreFor, err)
		case <-timer.C:
		}
		wait = min(2*wait, 8*time.Second)
	}
}

// restoreIdentity puts ident back after checkID changed it (state says how), and records and alerts
// a restore that could not be done.
func restoreIdentity(ctx context.Context, env *Env, checkID string, ident *identity.Identity, state string) error {
	err := retryRestore(ctx, ident)
	if err == nil {
		return nil
	}
	red := env.Target.Redactor
	f := RestoreFailure{
		Identity: ident.Name,
		Check:    checkID,
		State:    state,
		Manual:   red.String(ident.Restore.Manual()),
		Error:    red.String(err.Error()),
	}
	if env.Ledger != nil {
		env.Ledger.restoreFailed(f)
	}
	env.alert("RESTORE FAILED: identity %q was left %s by %s: %s; restore it by hand: %s", f.Identity, f.State, f.Check, f.Error, f.Manual)
	return red.Error(err)
}
