package finding

import "fmt"

// Words for staleness windows that every writer of a finding uses, so that a summary, a report line
// and a timeline label say the same thing.

// frameWords say what each frame counts from; %s is the change ("revocation", "downgrade").
var frameWords = map[string]string{
	FrameFillSent:     "counted from when the request that filled the API's cache was sent",
	FrameFillReceived: "counted from when the request that filled the API's cache was answered",
	FrameFirstUse:     "counted from the request that filled the API's cache",
	FrameChangeSent:   "counted from when the %s was sent",
	FrameChangeAcked:  "counted from the %s's acknowledgement",
	FrameChange:       "counted from the %s",
	FrameTokenExp:     "after the token's exp",
}

// DescribeFrame says what a frame counts from, for a sentence about change.
func DescribeFrame(frame, change string) string {
	w, ok := frameWords[frame]
	if !ok {
		return "counted from " + frame
	}
	if change == "" {
		change = "change"
	}
	if frame == FrameChangeSent || frame == FrameChangeAcked || frame == FrameChange {
		return fmt.Sprintf(w, change)
	}
	return w
}

// FormatBracket writes [lo, hi] in milliseconds in a unit and precision that keep the two apart:
// seconds only when the bracket is wider than a tenth of one, more decimals as it narrows. (A report
// once said "between 29.6 s and 29.6 s" for a bracket two milliseconds wide.)
func FormatBracket(lo, hi float64) string {
	switch {
	case (lo >= 10000 || lo <= -10000) && hi-lo >= 100:
		return fmt.Sprintf("[%.1f, %.1f] s", lo/1000, hi/1000)
	case hi-lo >= 0.1:
		return fmt.Sprintf("[%.1f, %.1f] ms", lo, hi)
	}
	return fmt.Sprintf("[%.3f, %.3f] ms", lo, hi)
}

// String writes the bracket as FormatBracket does, or "at least lo" when it is open.
func (b *Bracket) String() string {
	if b == nil {
		return ""
	}
	if !b.Closed() {
		return fmt.Sprintf("at least %.1f ms", b.LoMS)
	}
	return FormatBracket(b.LoMS, *b.HiMS)
}
