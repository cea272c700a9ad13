package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/tocsin/tocsin/internal/finding"
)

// fact is one labelled line about a finding, shared by the text, HTML and JUnit writers.
type fact struct{ Label, Text string }

// windowFacts says what a staleness window shows: its cause and why, the figure in the cause's frame
// (from one pass), the worst-case exposure, and how far replays reached when they stopped without a
// refusal. A window from a report written before causes were named gets the bracket alone.
func windowFacts(w *finding.Window, requests int) []fact {
	acked := "after the " + w.Change + " was acknowledged"
	passes := fmt.Sprintf("passes: %d, requests: %d", len(w.Passes), requests)
	if w.Cause == "" {
		if w.Never {
			return []fact{{"Window", fmt.Sprintf("still honoured at %s, the max window (%s)", ms(w.LastAcceptedMS), passes)}}
		}
		return []fact{{"Window", fmt.Sprintf("[%s, %s] %s; width %s (%s)", ms(w.LastAcceptedMS), ms(w.FirstRejectedMS), acked, ms(w.WidthMS()), passes)}}
	}
	facts := []fact{{"Cause", w.Cause + ": " + w.CauseReason}}
	inPass := fmt.Sprintf("pass %d of %d", w.BracketPass, len(w.Passes))
	switch {
	case w.Cause == finding.CausePeriodic && w.Periodic != nil:
		p := w.Periodic
		period := "period not estimated: " + p.PeriodNote
		if p.Period != nil {
			period = "estimated period " + p.Period.String()
		}
		facts = append(facts, fact{"Window", fmt.Sprintf("from %s to %s %s over the passes; %s (%s)", p.Shortest.String(), p.Longest.String(), acked, period, passes)})
	case w.Never:
		facts = append(facts, fact{"Window", fmt.Sprintf("still honoured %s %s by the last replay of pass %d (%s)", ms(w.LastAcceptedMS), acked, w.BracketPass, passes)})
	case w.Parameter != "" && w.Parameter != "window":
		facts = append(facts, fact{"Window", fmt.Sprintf("%s %s %s (%s; %s); in that pass %s %s",
			w.Parameter, w.Bracket.String(), finding.DescribeFrame(w.Frame, w.Change), inPass, passes, finding.FormatBracket(w.LastAcceptedMS, w.FirstRejectedMS), acked)})
	default:
		facts = append(facts, fact{"Window", fmt.Sprintf("%s %s in %s (%s)", finding.FormatBracket(w.LastAcceptedMS, w.FirstRejectedMS), acked, inPass, passes)})
	}
	if w.TokenExp != nil {
		facts = append(facts, fact{"Token", fmt.Sprintf("exp %s, issued for %s", w.TokenExp.UTC().Format(time.RFC3339), seconds(w.TokenLifetimeMS))})
	}
	if w.WorstCase != "" {
		facts = append(facts, fact{"Exposure", fmt.Sprintf("worst case %s: %s", fmtMS(w.WorstCaseMS), w.WorstCase)})
	}
	if w.Schedule != "" {
		spare := ""
		if w.SpareTokens > 0 {
			spare = fmt.Sprintf("; %d token(s) armed ahead were not needed", w.SpareTokens)
		}
		if w.UnchangedTokens > 0 {
			spare += fmt.Sprintf("; %d token(s) armed ahead were not needed (their change waited until a pass needed them) and were revoked after the measurement", w.UnchangedTokens)
		}
		facts = append(facts, fact{"Schedule", fmt.Sprintf("%s, %s in all: %s%s", w.Schedule, fmtMS(w.WallMS), w.ScheduleReason, spare)})
	}
	if r := w.Reach; r != nil {
		facts = append(facts, fact{"Replays", fmt.Sprintf("pass %d's last replay went out %s after its acknowledgement and none was refused; they stopped because %s", r.Pass, fmtMS(r.LastReplayMS), r.Detail)})
	}
	return facts
}

// passRow is one pass for the HTML table, offsets after its own acknowledgement.
func passRows(w *finding.Window) [][]string {
	var rows [][]string
	for i, p := range w.Passes {
		window := finding.FormatBracket(p.LastAcceptedMS, p.FirstRejectedMS)
		if p.Never {
			window = fmt.Sprintf("still honoured at %.1f ms", p.LastAcceptedMS)
		}
		var planned []string
		if p.ArmedAheadMS > 0 {
			planned = append(planned, fmt.Sprintf("armed %.1f ms after pass 1's acknowledgement", p.ArmedAheadMS))
		}
		if p.WaitBeforeMS > 0 {
			planned = append(planned, fmt.Sprintf("begun %.1f ms later", p.WaitBeforeMS))
		}
		if p.GapMS > 0 {
			planned = append(planned, fmt.Sprintf("%.1f ms gap before the %s", p.GapMS, w.Change))
		}
		fill := fmt.Sprintf("%.1f .. %.1f", p.FillSentMS, p.FillReceivedMS)
		if !p.FillCertain {
			fill += " (may have been filled earlier)"
		}
		rows = append(rows, []string{fmt.Sprint(i + 1), fill, fmt.Sprintf("%.1f", p.ChangeSentMS), window, p.Bracket.String(), strings.Join(planned, "; "), fmt.Sprint(p.Replays), p.Why})
	}
	return rows
}
