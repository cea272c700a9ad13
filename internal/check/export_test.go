package check

import "time"

// SetMaxPrimedVerifyWait lets tests send the in-flight check's verify read through the HTTP client.
func SetMaxPrimedVerifyWait(d time.Duration) (restore func()) {
	old := maxPrimedVerifyWait
	maxPrimedVerifyWait = d
	return func() { maxPrimedVerifyWait = old }
}

// RevokeOffsets exposes the in-flight check's offset schedule.
var RevokeOffsets = revokeOffsets

// Median is the tests' median, for the benchmarks outside the package.
var Median = median
