package jepsen

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

// Operations of a history, for the tests: id, grant and subject, invoke and return times, status.
func grant(id int64, g, s string, inv, ret int64) Op {
	return Op{ID: id, Kind: "grant", Grant: g, Subject: s, Invoke: inv, Return: ret, Status: 200}
}

func act(id int64, g, s string, inv, ret int64, status int) Op {
	return Op{ID: id, Kind: "act", Grant: g, Subject: s, Invoke: inv, Return: ret, Status: status}
}

func revoke(id int64, g string, inv, ret int64, status int) Op {
	return Op{ID: id, Kind: "revoke", Grant: g, Invoke: inv, Return: ret, Status: status}
}

func downgrade(id int64, s string, inv, ret int64, status int) Op {
	return Op{ID: id, Kind: "downgrade", Subject: s, Invoke: inv, Return: ret, Status: status}
}

// Each case is a small history: porcupine must find exactly the grants listed, and the explicit
// checker must agree with it.
func TestLinearizableFindsLateWrites(t *testing.T) {
	for _, tc := range []struct {
		name    string
		ops     []Op
		writes  []Write
		illegal []string
	}{
		{
			name: "a write racing its revocation is fine, one after it returned is not",
			ops: []Op{grant(1, "g1", "s1", 0, 5), act(2, "g1", "s1", 10, 50, 200), revoke(3, "g1", 20, 40, 200),
				act(4, "g1", "s1", 30, 60, 200)},
			writes:  []Write{{Op: 2, Grant: "g1", Subject: "s1", AtNs: 39}, {Op: 4, Grant: "g1", Subject: "s1", AtNs: 41}},
			illegal: []string{"g1"},
		},
		{
			// Its interval [invoke, return] alone would let act 4 go before the revocation: only
			// its clock reading shows it committed later.
			name:    "the clock reading moves a commit past the revocation",
			ops:     []Op{grant(1, "g1", "s1", 0, 5), revoke(3, "g1", 20, 40, 200), act(4, "g1", "s1", 10, 60, 200)},
			writes:  []Write{{Op: 4, Grant: "g1", Subject: "s1", AtNs: 45}},
			illegal: []string{"g1"},
		},
		{
			name:   "a reading at the revocation's return may precede it (intervals are closed)",
			ops:    []Op{grant(1, "g1", "s1", 0, 5), revoke(3, "g1", 20, 40, 200), act(4, "g1", "s1", 10, 60, 200)},
			writes: []Write{{Op: 4, Grant: "g1", Subject: "s1", AtNs: 40}},
		},
		{
			name: "refusals and failures are allowed anywhere; unacknowledged revocations promise nothing",
			ops: []Op{grant(1, "g1", "s1", 0, 5), revoke(2, "g1", 10, 20, 200), act(3, "g1", "s1", 30, 40, 401),
				act(4, "g1", "s1", 30, 40, 503), act(5, "g1", "s1", 30, 40, 0), act(6, "g1", "s1", 1, 2, 403),
				grant(7, "g2", "s2", 0, 5), revoke(8, "g2", 10, 20, 503), act(9, "g2", "s2", 30, 40, 200),
				revoke(10, "g2", 50, 60, 0), act(11, "g2", "s2", 70, 80, 200)},
			writes: []Write{{Op: 9, Grant: "g2", Subject: "s2", AtNs: 35}, {Op: 11, Grant: "g2", Subject: "s2", AtNs: 75}},
		},
		{
			name: "an act without an answer that committed is judged by its reading",
			ops: []Op{grant(1, "g4", "s4", 0, 5), act(8, "g4", "s4", 30, 90, 0), act(9, "g4", "s4", 30, 90, 0),
				act(10, "g4", "s4", 30, 90, 0), revoke(11, "g4", 40, 60, 200),
				grant(12, "g5", "s5", 0, 5), act(13, "g5", "s5", 30, 50, 0), revoke(14, "g5", 40, 60, 200)},
			writes: []Write{{Op: 8, Grant: "g4", Subject: "s4", AtNs: 59},
				// The client gave up at 50; the commit came after the revocation returned.
				{Op: 13, Grant: "g5", Subject: "s5", AtNs: 61}},
			illegal: []string{"g5"},
		},
		{
			name: "a downgrade covers every grant of its subject, and grants made after it",
			ops: []Op{grant(1, "g1", "s1", 0, 5), grant(2, "g2", "s1", 0, 5), grant(3, "g3", "s2", 0, 5),
				downgrade(4, "s1", 10, 20, 200), grant(5, "g4", "s1", 25, 30),
				act(6, "g1", "s1", 5, 30, 200), act(7, "g2", "s1", 5, 30, 200), act(8, "g3", "s2", 5, 30, 200),
				act(9, "g4", "s1", 35, 40, 200)},
			writes: []Write{{Op: 6, Grant: "g1", Subject: "s1", AtNs: 15}, {Op: 7, Grant: "g2", Subject: "s1", AtNs: 21},
				{Op: 8, Grant: "g3", Subject: "s2", AtNs: 21}, {Op: 9, Grant: "g4", Subject: "s1", AtNs: 36}},
			illegal: []string{"g2", "g4"},
		},
		{
			name:    "an unacknowledged downgrade promises nothing",
			ops:     []Op{grant(1, "g1", "s1", 0, 5), downgrade(2, "s1", 10, 20, 0), act(3, "g1", "s1", 30, 40, 200)},
			writes:  []Write{{Op: 3, Grant: "g1", Subject: "s1", AtNs: 35}},
			illegal: nil,
		},
		{
			name:    "a grant the history does not make was made before it",
			ops:     []Op{act(1, "g1", "s1", 10, 20, 200), revoke(2, "g1", 30, 40, 200), act(3, "g1", "s1", 50, 60, 200)},
			writes:  []Write{{Op: 1, Grant: "g1", Subject: "s1", AtNs: 15}, {Op: 3, Grant: "g1", Subject: "s1", AtNs: 55}},
			illegal: []string{"g1"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := CheckLinearizable(tc.ops, tc.writes, 10*time.Second)
			want := porcupine.Ok
			if len(tc.illegal) > 0 {
				want = porcupine.Illegal
			}
			if l.Result != want || !slices.Equal(l.Illegal, tc.illegal) {
				t.Fatalf("%v, illegal %q; want %s, illegal %q", l, l.Illegal, want, tc.illegal)
			}
			if d := Agree(Check(tc.ops, tc.writes), l); d != nil {
				t.Errorf("the checkers disagree: %q", d)
			}
		})
	}
}

// Porcupine checks more than the explicit checker looks at: an act that committed before its grant
// was made is not linearizable (the explicit checker leaves that to guard's own tests).
func TestLinearizableGrantFirst(t *testing.T) {
	ops := []Op{act(1, "g1", "s1", 10, 20, 200), grant(2, "g1", "s1", 30, 40)}
	l := CheckLinearizable(ops, []Write{{Op: 1, Grant: "g1", Subject: "s1", AtNs: 15}}, 10*time.Second)
	if l.Result != porcupine.Illegal || !slices.Equal(l.Illegal, []string{"g1"}) {
		t.Fatalf("%v %q; want g1 illegal", l, l.Illegal)
	}
}

func TestLinearizableVisualize(t *testing.T) {
	ops := []Op{grant(1, "g1", "s1", 0, 5), revoke(2, "g1", 10, 20, 200), act(3, "g1", "s1", 30, 40, 200),
		grant(4, "g2", "s1", 0, 5), act(5, "g2", "s1", 30, 40, 200)}
	l := CheckLinearizable(ops, []Write{{Op: 3, Grant: "g1", Subject: "s1", AtNs: 35}, {Op: 5, Grant: "g2", Subject: "s1", AtNs: 35}}, 10*time.Second)
	path := filepath.Join(t.TempDir(), "v.html")
	if err := l.Visualize(path, 10); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Only the failing grant is drawn.
	if !strings.Contains(string(b), "act 3 on g1") || strings.Contains(string(b), "act 5 on g2") {
		t.Errorf("the visualization (%d bytes) does not draw act 3 alone", len(b))
	}
	if err := CheckLinearizable(ops[3:], nil, time.Second).Visualize(path, 10); err == nil {
		t.Error("Visualize of a linearizable history: no error")
	}
}

// Porcupine runs a goroutine per partition at once; the race detector allows 8,128: the check
// goes in batches. 10,000 grants here, each made, acted on and revoked.
func TestLinearizableManyGrants(t *testing.T) {
	var ops []Op
	var writes []Write
	for i := range int64(10_000) {
		g, s, at := fmt.Sprintf("g%d", i), fmt.Sprintf("s%d", i%50), i*100
		ops = append(ops, grant(3*i+1, g, s, at, at+10), act(3*i+2, g, s, at+20, at+60, 200), revoke(3*i+3, g, at+30, at+50, 200))
		writes = append(writes, Write{Op: 3*i + 2, Grant: g, Subject: s, AtNs: at + 40})
	}
	l := CheckLinearizable(ops, writes, time.Minute)
	if l.Result != porcupine.Ok || l.Partitions != 10_000 || len(l.Illegal) != 0 {
		t.Fatalf("%v", l)
	}
	t.Log(l)
}
