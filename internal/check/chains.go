package check

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
)

// chains runs a probe's setup, verify and teardown steps for one experiment, each step as the
// identity it names, and removes what the setups created when the experiment ends. It is the one
// place that knows who a step runs as:
//
//   - setup steps run as the identity under test, with the token the check gives;
//   - verify steps run as the check's verifier (an identity, or anonymous);
//   - teardown steps run as the identity under test with a token that is still valid;
//   - a step's `as:` overrides any of these; other identities' tokens are minted once per
//     experiment, and again if they expire.
//
// Every use of the probe (a pass, an attempt, a race phase) begins with new unique values
// ({{uuid}}, {{random}}, {{seq}}), which its setup, the probe, verify and teardown all see.
type chains struct {
	env      *Env
	checkID  string
	p        *probe.Probe
	ident    *identity.Identity // the identity under test
	verifier string             // "", probe.Anonymous or an identity's name

	mu      sync.Mutex
	tokens  map[string]identity.Token // other identities' tokens, by name
	created []*resource               // what setups created, in order
}

// resource is what one setup created: the variables that name it.
type resource struct {
	vars probe.Vars
	gone bool // the experiment saw it removed (the action deleted it)
}

func newChains(env *Env, checkID string, p *probe.Probe, ident *identity.Identity, verifier string) *chains {
	return &chains{env: env, checkID: checkID, p: p, ident: ident, verifier: verifier, tokens: map[string]identity.Token{}}
}

// begin returns the variables of a new use of the probe: the config's vars, new unique values and
// tok's variables ({{token}}, {{token.id}}).
func (c *chains) begin(tok identity.Token) probe.Vars {
	vars := maps.Clone(c.env.Target.Vars)
	if vars == nil {
		vars = probe.Vars{}
	}
	maps.Copy(vars, probe.Unique())
	maps.Copy(vars, tok.Vars())
	return vars
}

// setup runs the setup chain as the identity under test (its token is in vars) and adds what the
// steps extracted to vars. Once a step has been sent the resource is recorded for teardown, even if
// a later step fails. It returns the responses, for evidence.
//
// A setup that has begun runs to its end even if the scan is interrupted meanwhile (each request
// still bounded by limits.timeout, the whole by setupFor): a request cut off in flight may have
// created something whose name only its answer says, and what is not named cannot be removed.
func (c *chains) setup(ctx context.Context, vars probe.Vars) ([]*probe.Result, error) {
	if len(c.p.Setup) == 0 {
		return nil, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), setupFor)
	defer cancel()
	own := tokenVars(vars)
	results, extracted, err := probe.RunChain(ctx, c.env.Target.Client, "setup", c.p.Setup, vars, c.creds(own), c.env.Target.Redactor)
	if len(results) > 0 {
		maps.Copy(vars, extracted)
		c.mu.Lock()
		c.created = append(c.created, &resource{vars: maps.Clone(vars)})
		c.mu.Unlock()
	}
	if err != nil {
		return results, c.stepErr(err)
	}
	return results, nil
}

// verifyRead runs the verify chain's leading steps, if any, and returns its last step, the read, with
// the variables to send it with: the resource's, with the verifier's credentials.
func (c *chains) verifyRead(ctx context.Context, vars probe.Vars) (*probe.Probe, probe.Vars, error) {
	steps := c.p.Verify
	if len(steps) == 0 {
		return nil, nil, errors.New("no verify")
	}
	v := maps.Clone(vars)
	creds := c.creds(nil)
	if lead := steps[:len(steps)-1]; len(lead) > 0 {
		_, extracted, err := probe.RunChain(ctx, c.env.Target.Client, "verify", lead, v, creds, c.env.Target.Redactor)
		if err != nil {
			return nil, nil, c.stepErr(err)
		}
		maps.Copy(v, extracted)
	}
	read := steps[len(steps)-1]
	cv, err := creds(ctx, read.As)
	if err != nil {
		return nil, nil, err
	}
	maps.Copy(v, cv)
	if cv["token"] == "" {
		read = read.WithoutCredential()
	}
	return read, v, nil
}

// adopt records a resource the probe itself created (a create request), named by vars, so that
// teardown removes it like what a setup created.
func (c *chains) adopt(vars probe.Vars) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.created = append(c.created, &resource{vars: maps.Clone(vars)})
}

// markGone records that the resource named by vars was seen removed: teardown leaves it alone.
func (c *chains) markGone(vars probe.Vars) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.created {
		if sameResource(r.vars, vars) {
			r.gone = true
		}
	}
}

// sameResource reports whether a and b name the same resource: they agree on every variable the
// setup extracted and on the unique values.
func sameResource(a, b probe.Vars) bool {
	for _, k := range probe.UniqueNames {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}

// teardownFor bounds the removal of one experiment's resources, and teardownParallel is how many
// are removed at once; setupFor bounds a setup that goes on after an interrupt.
const (
	teardownFor      = 30 * time.Second
	teardownParallel = 4
	setupFor         = 30 * time.Second
)

// teardown removes what the setups created, as a still-valid identity: outside the request budget
// and even after the scan was interrupted, since a scan must leave nothing behind. Without a
// teardown chain, fallback (when not nil) removes a resource (the in-flight check's action); what
// could not be removed is recorded in the ledger and shown in every report.
func (c *chains) teardown(ctx context.Context, fallback func(ctx context.Context, vars probe.Vars) error) {
	c.mu.Lock()
	created := c.created
	c.created = nil
	c.mu.Unlock()
	var left []*resource
	for _, r := range created {
		if !r.gone {
			left = append(left, r)
		}
	}
	if len(left) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(client.Unmetered(context.WithoutCancel(ctx)), teardownFor)
	defer cancel()
	red := c.env.Target.Redactor
	if len(c.p.Teardown) == 0 && fallback == nil {
		c.env.leftBehind(Leftover{Check: c.checkID, Probe: c.p.Name, Count: len(left),
			What:   fmt.Sprintf("%d resource(s) created by the setup of %s", len(left), c.p.Endpoint()),
			Reason: fmt.Sprintf("no teardown declared (hint: add probes.%s.teardown, e.g. a DELETE of what the setup created)", c.p.Name)})
		return
	}
	var failed int
	tok, lastErr := c.ident.Source.Token(ctx)
	if lastErr != nil {
		failed = len(left)
	} else {
		// A measurement may leave a resource per token it armed: remove them a few at a time.
		var mu sync.Mutex
		sem := make(chan struct{}, teardownParallel)
		var wg sync.WaitGroup
		for _, r := range left {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				vars := maps.Clone(r.vars)
				maps.Copy(vars, tok.Vars())
				var err error
				if len(c.p.Teardown) > 0 {
					_, _, err = probe.RunChain(ctx, c.env.Target.Client, "teardown", c.p.Teardown, vars, c.creds(tok.Vars()), c.env.Target.Redactor)
					if err != nil && alreadyGone(err) {
						// A 404 says the resource is gone only if something may have removed it: a
						// probe that writes (a DELETE replayed, an action). After reads alone it
						// says that the teardown missed it (a wrong path, an identity that may
						// not see it), and the resource is still there.
						if writes(c.p) {
							err = nil
						} else {
							err = fmt.Errorf("%w; the probe only reads, so nothing the scan sent removed what the setup created: the teardown missed it", err)
						}
					}
				} else {
					err = fallback(ctx, vars)
				}
				if err != nil {
					mu.Lock()
					failed++
					lastErr = err
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if c.ident.Revoke != nil && c.ident.Source.Fresh() {
			// The teardown's token is spent like every token the scan minted.
			_ = c.ident.Revoke.Run(ctx, tok)
		}
	}
	if failed > 0 {
		c.env.leftBehind(Leftover{Check: c.checkID, Probe: c.p.Name, Count: failed,
			What:   fmt.Sprintf("%d resource(s) created by the setup of %s", failed, c.p.Endpoint()),
			Reason: red.String(c.stepErr(lastErr).Error())})
	}
}

// alreadyGone reports whether a teardown step failed only because the resource no longer exists.
func alreadyGone(err error) bool {
	var se *probe.StepError
	return errors.As(err, &se) && se.Result != nil && (se.Result.Response.Status == 404 || se.Result.Response.Status == 410)
}

// creds resolves who a step runs as. own is the identity under test's token variables for steps
// that default to it (setup, teardown); nil means the step defaults to the verifier.
func (c *chains) creds(own probe.Vars) probe.Credentials {
	return func(ctx context.Context, as string) (probe.Vars, error) {
		switch {
		case as == "" && own != nil:
			return own, nil
		case as == "":
			as = c.verifier
		}
		if as == "" || as == probe.Anonymous {
			return probe.Vars{"token": ""}, nil
		}
		if as == c.ident.Name && own != nil {
			return own, nil
		}
		tok, err := c.token(ctx, as)
		if err != nil {
			return nil, err
		}
		return tok.Vars(), nil
	}
}

// token returns identity name's token for this experiment, minting it on first use and again when it
// is about to expire.
func (c *chains) token(ctx context.Context, name string) (identity.Token, error) {
	c.mu.Lock()
	tok, ok := c.tokens[name]
	c.mu.Unlock()
	if ok && !tok.Expired(5*time.Second) {
		return tok, nil
	}
	id, ok := c.env.Target.Identities[name]
	if !ok {
		return identity.Token{}, fmt.Errorf("no identity named %q", name)
	}
	tok, err := id.Source.Token(ctx)
	if err != nil {
		return identity.Token{}, fmt.Errorf("identity %q: get token: %w", name, c.env.Target.Redactor.Error(err))
	}
	c.mu.Lock()
	c.tokens[name] = tok
	c.mu.Unlock()
	return tok, nil
}

// stepErr adds the probe's name to a failed step, and a hint: the body the API answered often says
// what is wrong (a missing scope, a field it requires).
func (c *chains) stepErr(err error) error {
	var se *probe.StepError
	if errors.As(err, &se) && se.Result != nil && se.Err == nil {
		return c.env.Target.Redactor.Error(fmt.Errorf("probe %q: %w (hint: the response says what the API refused; check the step's request, the identity it runs as and its accept statuses)", c.p.Name, err))
	}
	return c.env.Target.Redactor.Error(fmt.Errorf("probe %q: %w", c.p.Name, err))
}

// tokenVars picks a token's variables out of vars.
func tokenVars(vars probe.Vars) probe.Vars {
	out := probe.Vars{}
	for k, v := range vars {
		if k == "token" || len(k) > 6 && k[:6] == "token." {
			out[k] = v
		}
	}
	return out
}

// TeardownIdentities runs each identity's teardown once per token its source minted during the
// scan (removing an account a login chain registered), outside the budget and after interrupts.
// What it could not remove is recorded in the ledger and alerted.
func TeardownIdentities(ctx context.Context, env *Env) {
	t := env.Target
	ctx, cancel := context.WithTimeout(client.Unmetered(context.WithoutCancel(ctx)), teardownFor)
	defer cancel()
	for _, name := range sortedIdentities(t.Identities) {
		id := t.Identities[name]
		minted := id.Minted()
		if len(id.Teardown) == 0 || len(minted) == 0 {
			continue
		}
		ch := newChains(env, "teardown", &probe.Probe{Name: name}, id, "")
		failed := 0
		var lastErr error
		for _, tok := range minted {
			vars := ch.begin(tok)
			if _, _, err := probe.RunChain(ctx, t.Client, "teardown", id.Teardown, vars, ch.creds(tok.Vars()), t.Redactor); err != nil && !alreadyGone(err) {
				failed++
				lastErr = err
			}
		}
		if failed > 0 {
			env.leftBehind(Leftover{Check: "identity " + name, Probe: name, Count: failed,
				What:   fmt.Sprintf("%d of the %d tokens (and what minting them created) of identity %s", failed, len(minted), name),
				Reason: t.Redactor.String(fmt.Sprintf("identities.%s.teardown failed: %v", name, lastErr))})
		}
	}
}

func sortedIdentities(m map[string]*identity.Identity) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
