package jepsen

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"slices"
	"time"

	"github.com/anishathalye/porcupine"
)

// The second checker: the same history and committed writes, checked by porcupine for
// linearizability against a sequential model of one grant's authorization state. It shares no code
// with Check, so a mistake in one is unlikely to be repeated in the other, and the two must agree on
// which grants were violated (see Agree).
//
// The model, per grant: the grant was made or not, was revoked or not, and its subject may still
// write or not (a downgrade cuts the subject's write scope, which no operation restores). A
// committed act is allowed only in a state where the grant was made, is not revoked and may write;
// every other operation is allowed in any state:
//
//   - An act that did not commit (refused, failed, or without an answer and without a row) does not
//     change the state and is accepted anywhere. The property is safety: guard may refuse for reasons
//     the model does not know of (a store that is down, a fault), so requiring a refusal would check
//     availability, which faults legitimately break.
//   - A revoke or downgrade that was not acknowledged promised nothing. It may or may not have taken
//     effect, and not taking effect allows every act that taking effect allows, so it is modelled as
//     a no-op. An acknowledged one takes effect somewhere between its invocation and its return.
//   - A grant, acknowledged or not, makes the grant: that choice allows every act the other allows.
//
// An act's point is its commit. Its write reads the shared clock (at_ns) inside its transaction just
// before committing, so the commit lies after at_ns: the act's interval starts at at_ns instead of
// its invocation. It ends at the act's return when the client was told it committed; otherwise
// (no answer, a timeout, an error after the commit was sent) the commit may have landed after the
// client gave up, and the interval is left open. Using at_ns as the end instead would be wrong:
// it would let a commit that came after a revocation returned be placed before it.
//
// A downgrade belongs to every grant of its subject: it is copied into each of their partitions.
// That is exact, not an approximation: a downgrade only forbids commits placed after it and nothing
// needs it early, so the set of points where it fits in one partition is an interval ending at its
// return, and the subject's partitions therefore all fit with it at its return whenever each fits on
// its own.

// unbounded ends the interval of an act whose commit may have come after its client gave up.
const unbounded = math.MaxInt64

type linKind uint8

const (
	linGrant linKind = iota
	linAct
	linRevoke
	linDowngrade
)

// linInput is an operation as the model sees it. Grant is the partition's grant (for a downgrade,
// one of its subject's grants).
type linInput struct {
	Kind    linKind
	Op      int64
	Grant   string
	Subject string
	// Synthetic marks a grant the history does not show being made: it was made before the run.
	Synthetic bool
}

// linOutput is whether an act committed, or whether a grant, revoke or downgrade was acknowledged.
type linOutput bool

// linState is one grant's authorization state.
type linState struct {
	Made     bool
	Revoked  bool
	Writable bool // the subject's write scope
}

func linStep(state, input, output any) (bool, any) {
	s, in, ok := state.(linState), input.(linInput), bool(output.(linOutput))
	switch in.Kind {
	case linGrant:
		s.Made = true
	case linAct:
		if ok {
			return s.Made && !s.Revoked && s.Writable, s
		}
	case linRevoke:
		if ok {
			s.Revoked = true
		}
	case linDowngrade:
		if ok {
			s.Writable = false
		}
	}
	return true, s
}

// linModel is the model, partitioned by grant.
var linModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		index := map[string]int{}
		var parts [][]porcupine.Operation
		for _, o := range history {
			g := o.Input.(linInput).Grant
			i, ok := index[g]
			if !ok {
				i = len(parts)
				index[g] = i
				parts = append(parts, nil)
			}
			parts[i] = append(parts[i], o)
		}
		return parts
	},
	Init: func() any { return linState{Writable: true} },
	Step: linStep,
	Hash: func(state any) uint64 {
		s := state.(linState)
		var h uint64
		for i, b := range []bool{s.Made, s.Revoked, s.Writable} {
			if b {
				h |= 1 << i
			}
		}
		return h
	},
	DescribeOperation: func(input, output any) string {
		in, ok := input.(linInput), bool(output.(linOutput))
		switch in.Kind {
		case linGrant:
			if in.Synthetic {
				return fmt.Sprintf("grant %s (%s), before the run", in.Grant, in.Subject)
			}
			return fmt.Sprintf("grant %s (%s) -> %s", in.Grant, in.Subject, acked(ok))
		case linAct:
			out := "committed"
			if !ok {
				out = "not committed"
			}
			return fmt.Sprintf("act %d on %s -> %s", in.Op, in.Grant, out)
		case linRevoke:
			return fmt.Sprintf("revoke %s -> %s", in.Grant, acked(ok))
		default:
			return fmt.Sprintf("downgrade %s -> %s", in.Subject, acked(ok))
		}
	},
	DescribeState: func(state any) string {
		s := state.(linState)
		return fmt.Sprintf("made=%t revoked=%t write=%t", s.Made, s.Revoked, s.Writable)
	},
}

func acked(ok bool) string {
	if ok {
		return "ok"
	}
	return "not acknowledged"
}

// LinReport is what CheckLinearizable found.
type LinReport struct {
	Result     porcupine.CheckResult // Ok, Illegal, or Unknown: porcupine ran out of time
	Ops        int                   // operations checked (a downgrade counts once per grant of its subject)
	Partitions int                   // grants
	// Illegal lists the grants whose history is not linearizable, sorted; nil when the check ran
	// out of time, since the partitions it stopped cannot be told from those that failed.
	Illegal []string
	Elapsed time.Duration
	Timeout time.Duration
	// Notes are oddities of the history that the model had to assume something about.
	Notes []string

	parts [][]porcupine.Operation
}

func (l LinReport) String() string {
	s := fmt.Sprintf("porcupine: %s, %d operations in %d partitions (one per grant) checked in %v", l.Result, l.Ops, l.Partitions,
		l.Elapsed.Round(time.Millisecond))
	switch {
	case l.Result == porcupine.Unknown:
		s += fmt.Sprintf(": ran out of its %v before deciding", l.Timeout)
	case len(l.Illegal) > 0:
		s += fmt.Sprintf(": %d grants not linearizable", len(l.Illegal))
	case l.Result == porcupine.Illegal:
		s += fmt.Sprintf(" (hit its %v timeout: which grants failed is not known)", l.Timeout)
	}
	return s
}

// batchPartitions bounds the partitions checked at once: porcupine starts a goroutine for each, and
// the race detector allows 8,128 alive at a time (a 100,000-operation run has some 10,000 grants).
const batchPartitions = 1000

// CheckLinearizable checks the history and the committed writes with porcupine, within timeout.
func CheckLinearizable(ops []Op, writes []Write, timeout time.Duration) LinReport {
	l := LinReport{Timeout: timeout}
	var history []porcupine.Operation
	history, l.Notes = linHistory(ops, writes)
	l.Ops = len(history)
	l.parts = linModel.Partition(history)
	l.Partitions = len(l.parts)

	start := time.Now()
	l.Result = porcupine.Ok
	var illegal []string
	timedOut := false
	for lo := 0; lo < len(l.parts); lo += batchPartitions {
		batch := l.parts[lo:min(lo+batchPartitions, len(l.parts))]
		left := timeout - time.Since(start)
		if left <= 0 {
			l.Result, timedOut = porcupine.Unknown, true
			break
		}
		res, info := porcupine.CheckOperationsVerbose(linModel, slices.Concat(batch...), left)
		if time.Since(start) >= timeout {
			timedOut = true
		}
		switch res {
		case porcupine.Illegal:
			l.Result = porcupine.Illegal
			// A partition is linearizable when one of its partial linearizations covers it whole.
			for i, lin := range info.PartialLinearizations() {
				if !slices.ContainsFunc(lin, func(seq []int) bool { return len(seq) == len(batch[i]) }) {
					illegal = append(illegal, batch[i][0].Input.(linInput).Grant)
				}
			}
		case porcupine.Unknown:
			if l.Result == porcupine.Ok {
				l.Result = porcupine.Unknown
			}
			timedOut = true
		}
		if timedOut {
			break
		}
	}
	l.Elapsed = time.Since(start)
	if !timedOut {
		slices.Sort(illegal)
		l.Illegal = illegal
		if l.Illegal == nil {
			l.Illegal = []string{}
		}
	}
	return l
}

// linHistory turns the history and the writes into porcupine's operations, grouped by grant, with
// the operations of each grant given lanes (porcupine's clients) for the visualization.
func linHistory(ops []Op, writes []Write) ([]porcupine.Operation, []string) {
	var notes []string
	written := make(map[int64]Write, len(writes))
	for _, w := range writes {
		written[w.Op] = w
	}
	byGrant := map[string][]porcupine.Operation{}
	made := map[string]bool{}
	subjectOf := map[string]string{}
	grantsOf := map[string][]string{}
	note := func(grant, subject string) {
		if grant == "" || subject == "" {
			return
		}
		if _, ok := subjectOf[grant]; !ok {
			subjectOf[grant] = subject
			grantsOf[subject] = append(grantsOf[subject], grant)
		}
	}
	earliest := int64(math.MaxInt64)
	add := func(o Op, in linInput, out bool, call, ret int64) {
		byGrant[in.Grant] = append(byGrant[in.Grant], porcupine.Operation{
			Input: in, Output: linOutput(out), Call: call, Return: ret,
			Metadata: fmt.Sprintf("op %d on replica %d: status %d %s, invoked %.3f ms, returned %.3f ms",
				o.ID, o.Replica, o.Status, o.Err, ms(o.Invoke), ms(o.Return)),
		})
	}
	var downgrades []Op
	for _, o := range ops {
		earliest = min(earliest, o.Invoke)
		switch o.Kind {
		case "grant":
			note(o.Grant, o.Subject)
			made[o.Grant] = true
			add(o, linInput{Kind: linGrant, Op: o.ID, Grant: o.Grant, Subject: o.Subject}, o.OK(), o.Invoke, o.Return)
		case "act":
			note(o.Grant, o.Subject)
			call, ret := o.Invoke, o.Return
			w, committed := written[o.ID]
			if committed {
				call = max(call, w.AtNs)
				if !o.OK() {
					ret = unbounded
				}
				if call > ret {
					notes = append(notes, fmt.Sprintf("act op %d read the clock for its write after its client had the answer", o.ID))
					call = ret
				}
			}
			add(o, linInput{Kind: linAct, Op: o.ID, Grant: o.Grant, Subject: o.Subject}, committed || o.OK(), call, ret)
		case "revoke":
			add(o, linInput{Kind: linRevoke, Op: o.ID, Grant: o.Grant}, o.OK(), o.Invoke, o.Return)
		case "downgrade":
			downgrades = append(downgrades, o)
		}
	}
	for _, o := range downgrades {
		for _, g := range grantsOf[o.Subject] {
			add(o, linInput{Kind: linDowngrade, Op: o.ID, Grant: g, Subject: o.Subject}, o.OK(), o.Invoke, o.Return)
		}
	}
	grants := make([]string, 0, len(byGrant))
	for g := range byGrant {
		grants = append(grants, g)
	}
	slices.Sort(grants)
	var out []porcupine.Operation
	synthetic := 0
	for _, g := range grants {
		part := byGrant[g]
		if !made[g] {
			synthetic++
			part = append(part, porcupine.Operation{
				Input:  linInput{Kind: linGrant, Grant: g, Subject: subjectOf[g], Synthetic: true},
				Output: linOutput(true), Call: earliest - 1, Return: earliest - 1,
			})
		}
		out = append(out, lanes(part)...)
	}
	if synthetic > 0 {
		notes = append(notes, fmt.Sprintf("%d grants are not made in the history: taken as made before it", synthetic))
	}
	return out, notes
}

// lanes sorts one partition's operations by invocation and gives each the lowest lane (ClientId)
// free at its invocation, so that the visualization draws no two overlapping operations on one row.
func lanes(part []porcupine.Operation) []porcupine.Operation {
	slices.SortStableFunc(part, func(a, b porcupine.Operation) int { return cmp.Compare(a.Call, b.Call) })
	var busyUntil []int64
	for i := range part {
		lane := slices.IndexFunc(busyUntil, func(t int64) bool { return t < part[i].Call })
		if lane < 0 {
			lane = len(busyUntil)
			busyUntil = append(busyUntil, 0)
		}
		busyUntil[lane] = part[i].Return
		part[i].ClientId = lane
	}
	return part
}

// Visualize writes porcupine's HTML visualization of at most limit of the grants that are not
// linearizable to path, checking them again to find their partial linearizations.
func (l LinReport) Visualize(path string, limit int) error {
	if len(l.Illegal) == 0 {
		return fmt.Errorf("jepsen: nothing to visualize: no grant is known not to be linearizable (%s)", l.Result)
	}
	var history []porcupine.Operation
	for _, part := range l.parts {
		if _, found := slices.BinarySearch(l.Illegal[:min(limit, len(l.Illegal))], part[0].Input.(linInput).Grant); found {
			history = append(history, part...)
		}
	}
	_, info := porcupine.CheckOperationsVerbose(linModel, history, l.Timeout)
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := porcupine.Visualize(linModel, info, f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Agree compares the two checkers: the grants Check found a violation of must be the grants
// porcupine found not linearizable. It returns a description of every difference.
func Agree(r Report, l LinReport) []string {
	if l.Illegal == nil {
		return nil // porcupine did not finish: nothing to compare
	}
	explicit := map[string]bool{}
	for _, v := range r.Violations {
		explicit[v.Write.Grant] = true
	}
	var diff []string
	for _, g := range l.Illegal {
		if !explicit[g] {
			diff = append(diff, fmt.Sprintf("grant %s: porcupine finds it not linearizable, the explicit checker no violation", g))
		}
		delete(explicit, g)
	}
	for g := range explicit {
		diff = append(diff, fmt.Sprintf("grant %s: the explicit checker finds a violation, porcupine finds it linearizable", g))
	}
	slices.Sort(diff)
	return diff
}
