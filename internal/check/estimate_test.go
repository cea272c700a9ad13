package check

import (
	"testing"
	"time"
)

// The estimate validate prints bounds what the simulated measurements send, and grows with the
// max window the way the first pass's schedule does.
func TestStalenessRequestsBoundsTheSchedule(t *testing.T) {
	for _, api := range simAPIs() {
		run := simulate(api, 1, 90*time.Second)
		// The simulation's arming costs 3 requests (no setup).
		if est := StalenessRequests(90*time.Second, false, 3); run.requests > est {
			t.Errorf("%s: %d requests, over the estimate %d", api.name, run.requests, est)
		}
	}
	short, long := StalenessRequests(10*time.Second, false, 4), StalenessRequests(10*time.Minute, false, 4)
	if short >= long || long > 3*short {
		t.Errorf("estimates %d (10 s) and %d (10 min): want more for a longer window, and not out of proportion", short, long)
	}
}
