package probe

import (
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"strconv"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/redact"
)

// seq numbers experiments across a run, for {{seq}}.
var seq atomic.Int64

// Unique returns values that are new for each experiment, so that what a setup creates never
// collides with what an earlier experiment (or another scan) created, and no one puts a token into
// a resource name to make it unique: {{uuid}} (a random UUID), {{random}} (26 random letters and
// digits) and {{seq}} (1, 2, 3, ... in this run).
func Unique() Vars {
	return Vars{"uuid": uuid.NewString(), "random": rand.Text(), "seq": strconv.FormatInt(seq.Add(1), 10)}
}

// UniqueNames are the variables Unique sets, for config validation.
var UniqueNames = []string{"uuid", "random", "seq"}

// Credentials returns the variables a step sent as identity `as` carries: {{token}} and the token's
// fields ({{token.id}}); an empty token for Anonymous. as is "" for the chain's default identity.
type Credentials func(ctx context.Context, as string) (Vars, error)

// StepError is a step of a chain that was not accepted, or whose extract failed. Result is the
// response, for evidence and for the message (its body shows what the API said was wrong).
type StepError struct {
	Chain  string // "setup", "verify", "teardown", "login"
	Index  int    // 1-based
	Step   *Probe
	Result *Result
	Err    error // the cause when there is no result, or the extract failure
	// Excerpt is the start of the response body, redacted before it was cut.
	Excerpt string
}

func (e *StepError) Error() string {
	where := fmt.Sprintf("%s step %d (%s)", e.Chain, e.Index, e.Step.Endpoint())
	if e.Result == nil {
		return fmt.Sprintf("%s: %v", where, e.Err)
	}
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", where, e.Err)
	}
	body := e.Excerpt
	if body == "" {
		body = "(empty body)"
	}
	return fmt.Sprintf("%s answered %d: %q", where, e.Result.Response.Status, body)
}

func (e *StepError) Unwrap() error { return e.Err }

// RunChain sends steps in order. Each is rendered with vars, what the earlier steps extracted, and
// the credentials of the identity it runs as; each must be accepted. It returns every response, for
// evidence, and everything the steps extracted. The first step that fails ends the chain with a
// *StepError, whose message quotes the start of the response through red.
func RunChain(ctx context.Context, c *client.Client, chain string, steps []*Probe, vars Vars, creds Credentials, red *redact.Redactor) ([]*Result, Vars, error) {
	extracted := Vars{}
	var results []*Result
	for i, step := range steps {
		v := maps.Clone(vars)
		if v == nil {
			v = Vars{}
		}
		maps.Copy(v, extracted)
		cv, err := creds(ctx, step.As)
		if err != nil {
			return results, extracted, &StepError{Chain: chain, Index: i + 1, Step: step, Err: err}
		}
		maps.Copy(v, cv)
		s := step
		if cv["token"] == "" {
			s = step.WithoutCredential()
		}
		r, err := s.Do(ctx, c, v)
		if r != nil {
			results = append(results, r)
		}
		if err != nil {
			return results, extracted, &StepError{Chain: chain, Index: i + 1, Step: step, Result: r, Err: err}
		}
		if r.Outcome != Accepted {
			return results, extracted, &StepError{Chain: chain, Index: i + 1, Step: step, Result: r, Excerpt: red.Excerpt(r.Response.Body, 200, r.Response.Truncated)}
		}
		maps.Copy(extracted, r.Extracted)
	}
	return results, extracted, nil
}
