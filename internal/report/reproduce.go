package report

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/tocsin/tocsin/internal/finding"
)

// reproduceScript writes a finding's evidence as a shell script a person can follow: the requests as
// curl commands in time order with the waits between them, each identity's token as a variable
// ($TOKEN_ALICE) since the report holds only labels, and what the API answered as comments.
// Consecutive identical requests sent together (a race's copies) become one command run N times at
// once.
func reproduceScript(f finding.Finding, zero string) string {
	tokens := tokenVars(f)
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: %s on %s\n", f.ID, f.Check, f.Endpoint)
	if len(tokens.order) > 0 {
		b.WriteString("# Set each token first, obtained the way your config's identity does:\n")
		for _, label := range tokens.order {
			v := tokens.vars[label]
			fmt.Fprintf(&b, "#   %-14s %s (%s in this report)\n", v.name, v.about, label)
		}
	}
	if hasBody(f) {
		where := "the probe"
		if f.Probe != "" {
			where = "probe " + f.Probe
		}
		if l := f.Location; l != nil {
			where += fmt.Sprintf(" (%s:%d)", l.File, l.Line)
		}
		fmt.Fprintf(&b, "# Request bodies are not in the report: add them from %s with --data.\n", where)
	}
	fmt.Fprintf(&b, "# Times are from %s; a shell keeps them only roughly.\n", zero)

	events := f.Evidence
	prevAt := 0.0
	for i := 0; i < len(events); i++ {
		e := events[i]
		if i > 0 {
			if wait := e.AtMS - prevAt; wait >= 50 {
				fmt.Fprintf(&b, "sleep %.3f\n", wait/1000)
			}
		}
		prevAt = e.AtMS
		b.WriteString("\n")
		what := e.Kind
		if e.Detail != "" {
			what += ": " + oneLine(e.Detail)
		}
		if e.HTTP == nil {
			fmt.Fprintf(&b, "# %s  %s\n", fmtMS(e.AtMS), what)
			if e.Kind == finding.EventChangeSent {
				b.WriteString("#   run this change with the hook in your config now, and go on once it is acknowledged\n")
			}
			continue
		}
		// Requests sent within a few milliseconds of each other, identical but for the evidence's
		// numbering, were sent together: one command, run as many times at once.
		j := i
		for j+1 < len(events) && sameRequest(events[j+1], e) && events[j+1].AtMS-e.AtMS < 5 {
			j++
		}
		n := j - i + 1
		if n > 1 {
			what = fmt.Sprintf("%s (%d requests sent together)", digitRuns.ReplaceAllString(what, "N"), n)
		}
		fmt.Fprintf(&b, "# %s  %s\n", fmtMS(e.AtMS), what)
		cmd := curlCommand(e.HTTP, tokens)
		if n > 1 {
			fmt.Fprintf(&b, "for i in $(seq %d); do\n  %s &\ndone; wait\n", n, cmd)
		} else {
			b.WriteString(cmd + "\n")
		}
		answer := fmt.Sprintf("#   -> %d", e.HTTP.Status)
		if e.HTTP.Outcome != "" {
			answer += " " + e.HTTP.Outcome
		}
		if n > 1 {
			answer += fmt.Sprintf(" (each of the %d)", n)
		}
		if e.HTTP.BodyExcerpt != "" {
			answer += ": " + oneLine(e.HTTP.BodyExcerpt)
		}
		b.WriteString(answer + "\n")
		prevAt = events[j].AtMS
		i = j
	}
	return b.String()
}

var digitRuns = regexp.MustCompile(`\d+`)

// sameRequest reports whether two events are the same request with the same answer.
func sameRequest(a, b finding.Event) bool {
	if a.HTTP == nil || b.HTTP == nil || a.Kind != b.Kind {
		return false
	}
	x, y := *a.HTTP, *b.HTTP
	return x.Method == y.Method && x.URL == y.URL && x.Token == y.Token && x.Status == y.Status && x.Outcome == y.Outcome &&
		digitRuns.ReplaceAllString(a.Detail, "N") == digitRuns.ReplaceAllString(b.Detail, "N")
}

func hasBody(f finding.Finding) bool {
	for _, e := range f.Evidence {
		if e.HTTP != nil && (e.HTTP.Method == "POST" || e.HTTP.Method == "PUT" || e.HTTP.Method == "PATCH") {
			return true
		}
	}
	return false
}

// curlCommand writes an exchange's request as a curl command.
func curlCommand(x *finding.Exchange, tokens tokenNames) string {
	parts := []string{"curl -sS"}
	if x.Method != "" && x.Method != "GET" {
		parts = append(parts, "-X "+x.Method)
	}
	parts = append(parts, shellQuote(tokens.replace(x.URL)))
	if x.Token != "" && x.Token != noToken {
		parts = append(parts, `-H "Authorization: Bearer $`+tokens.vars[x.Token].name+`"`)
	}
	return strings.Join(parts, " ")
}

// tokenNames maps each token label in a finding's evidence to a shell variable.
type tokenNames struct {
	order []string // labels in order of first use
	vars  map[string]tokenVar
}

type tokenVar struct{ name, about string }

func (t tokenNames) replace(s string) string {
	for _, label := range t.order {
		s = strings.ReplaceAll(s, label, "$"+t.vars[label].name)
	}
	return s
}

// asIdentity finds "as bob" in an event's detail: the identity that sent it when it is not the
// finding's own (the verifier).
var asIdentity = regexp.MustCompile(`\bas ([A-Za-z0-9_.-]+)`)

// tokenVars names the tokens: TOKEN_ALICE for the identity under test's first token, TOKEN_ALICE_2
// for its next one, TOKEN_BOB for a token the verifier used.
func tokenVars(f finding.Finding) tokenNames {
	t := tokenNames{vars: map[string]tokenVar{}}
	perIdentity := map[string]int{}
	forged := 0
	for _, e := range f.Evidence {
		if e.HTTP == nil || e.HTTP.Token == "" || e.HTTP.Token == noToken {
			continue
		}
		if _, ok := t.vars[e.HTTP.Token]; ok {
			continue
		}
		if strings.HasPrefix(e.HTTP.Token, "[forged:") || strings.HasPrefix(e.HTTP.Token, "[garbage") {
			// Not a token any identity has: say how to build it (the finding's forged list).
			forged++
			about := "a value tocsin made in place of a token"
			for _, fg := range f.Forged {
				if fg.Variant == e.Detail || strings.HasSuffix(e.Detail, fg.Variant) {
					about = "built as: " + fg.Made
				}
			}
			t.order = append(t.order, e.HTTP.Token)
			t.vars[e.HTTP.Token] = tokenVar{name: fmt.Sprintf("FORGED_%d", forged), about: about}
			continue
		}
		who := f.Identity
		if m := asIdentity.FindStringSubmatch(e.Detail); m != nil {
			who = m[1]
		}
		if who == "" {
			who = "identity"
		}
		perIdentity[who]++
		name := "TOKEN_" + strings.ToUpper(shellName.ReplaceAllString(who, "_"))
		about := "a token for " + who
		if n := perIdentity[who]; n > 1 {
			name += fmt.Sprintf("_%d", n)
			about = fmt.Sprintf("another token for %s (the %s one it used)", who, ordinal(n))
		}
		t.order = append(t.order, e.HTTP.Token)
		t.vars[e.HTTP.Token] = tokenVar{name: name, about: about}
	}
	return t
}

var shellName = regexp.MustCompile(`[^A-Za-z0-9_]`)

// noToken is how evidence labels a request sent without a token.
const noToken = "(none)"

func ordinal(n int) string {
	switch n {
	case 2:
		return "second"
	case 3:
		return "third"
	}
	return fmt.Sprintf("%dth", n)
}

// shellQuote quotes s for a POSIX shell; a $NAME in it (a token variable) stays expandable.
func shellQuote(s string) string {
	quoted := "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	return tokenRef.ReplaceAllString(quoted, `'"$$$1"'`)
}

var tokenRef = regexp.MustCompile(`\$(TOKEN_[A-Z0-9_]+)`)

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
