package report

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tocsin/tocsin/internal/finding"
)

// raceFinding has what a race leaves in the evidence: 20 copies of one request within a millisecond.
func raceFinding() finding.Finding {
	f := finding.Finding{ID: "TOC-0000000001", Check: "race/limit-overrun", Endpoint: "POST /coupons/{{coupon_id}}/redeem", Identity: "alice", Probe: "redeem-coupon"}
	f.Evidence = append(f.Evidence, finding.Event{AtMS: 0, Kind: finding.EventToken, Detail: "token for alice"})
	for i := range 20 {
		f.Evidence = append(f.Evidence, finding.Event{AtMS: 220.1 + float64(i)*0.01, Kind: finding.EventNote, Detail: fmt.Sprintf("race copy %d: accepted", i+1),
			HTTP: &finding.Exchange{Method: "POST", URL: "http://127.0.0.1:8787/coupons/c1/redeem", Token: "[token:1a2b3c4d]", Status: 200, Outcome: "accepted", BodyExcerpt: `{"credit":10}`}})
	}
	return f
}

// A race's copies are one mark with a count, and one command run that many times at once.
func TestRaceCopiesAreOneMark(t *testing.T) {
	tl := buildTimeline(raceFinding())
	var labels []string
	for _, m := range tl.Marks {
		for _, l := range m.Lines {
			labels = append(labels, l.Text)
		}
	}
	labels = append(labels, tl.Notes...)
	if len(tl.Marks) != 2 || !strings.Contains(strings.Join(labels, "|"), "race copy: accepted (×20)") {
		t.Errorf("%d marks labelled %q; want the token and one mark for the 20 copies", len(tl.Marks), labels)
	}
	script := reproduceScript(raceFinding(), "the start of the experiment")
	for _, want := range []string{
		"for i in $(seq 20); do",
		`curl -sS -X POST 'http://127.0.0.1:8787/coupons/c1/redeem' -H "Authorization: Bearer $TOKEN_ALICE" &`,
		`-> 200 accepted (each of the 20): {"credit":10}`,
		"sleep 0.220",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("reproduce script lacks %q:\n%s", want, script)
		}
	}
}

// Reproduce names each identity's tokens as variables, in order, with the waits and the answers.
func TestReproduceScript(t *testing.T) {
	var revoked, inflight finding.Finding
	for _, f := range goldenReports()[0].Findings {
		switch {
		case f.Check == "toctou/revoked-token-accepted" && f.Endpoint == "GET /items/{{item_id}}":
			revoked = f
		case f.Check == "toctou/in-flight-action":
			inflight = f
		}
	}
	script := reproduceScript(revoked, "the acknowledgement")
	for _, want := range []string{
		"TOKEN_ALICE    a token for alice ([token:1a2b3c4d] in this report)",
		`curl -sS 'http://127.0.0.1:8787/items/4f2a' -H "Authorization: Bearer $TOKEN_ALICE"`,
		"run this change with the hook in your config now",
		"sleep 1.969",
		`#   -> 401 rejected: {"id":"4f2a","owner":"alice"}`,
	} {
		if !strings.Contains(script, want) {
			t.Errorf("reproduce script lacks %q:\n%s", want, script)
		}
	}
	if strings.Index(script, "sleep 1.981") > strings.Index(script, "-> 401") {
		t.Error("the wait comes after the replays it precedes")
	}
	if s := reproduceScript(inflight, "the acknowledgement"); !strings.Contains(s, "resource still there after the acknowledgement (as bob)") {
		t.Errorf("in-flight script lacks the verify step:\n%s", s)
	}
}

func TestShellQuoteKeepsTokenVariables(t *testing.T) {
	if got, want := shellQuote("http://h/revoke/$TOKEN_ALICE?x='y'"), `'http://h/revoke/'"$TOKEN_ALICE"'?x='\''y'\'''`; got != want {
		t.Errorf("shellQuote = %s, want %s", got, want)
	}
}

// The page opens with a findings table linking each card, shows each response excerpt, rates each
// finding level first, and explains the rating itself rather than naming files the reader lacks.
func TestHTMLFindingsTableExcerptsAndRules(t *testing.T) {
	page := string(render(t, "html", goldenReports()))
	r := goldenReports()[0]
	table := page[strings.Index(page, `<table class="findings">`):]
	table = table[:strings.Index(table, "</table>")]
	for _, f := range r.Findings {
		if !strings.Contains(table, `<a href="#`+f.ID+`">`) {
			t.Errorf("the findings table has no link to %s", f.ID)
		}
	}
	if !strings.Contains(table, "lifetime-from-first-use: lifetime [1999.3, 2001.2] ms counted from the request that filled the API&#39;s cache") {
		t.Errorf("the findings table lacks the window in one line:\n%s", table)
	}
	for _, want := range []string{
		`<td class="excerpt">{&#34;id&#34;:&#34;4f2a&#34;,&#34;owner&#34;:&#34;alice&#34;}</td>`,
		`<dt>Severity</dt><dd><span class="sev sev-medium">MEDIUM</span> worst-case exposure 2001.2 ms (lifetime-from-first-use), 1 s or more, read-only probe</dd>`,
		"How severity, score and grade are decided",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	if strings.Contains(page, "docs/severity.md") || strings.Contains(page, "docs/score.md") {
		t.Error("the page sends the reader to docs/ files they do not have")
	}
	if strings.Index(page, "Not tested, so not a pass") > strings.Index(page, `<table class="findings">`) {
		t.Error("the findings table comes before what makes the scan incomplete")
	}
}
