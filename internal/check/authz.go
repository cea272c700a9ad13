package check

// What the authz checks share. Each experiment holds one token per identity, sends the probe as
// the identity under test on what belongs to another (an object, a privilege), and decides from
// what came back and from reading the object back, never from a status alone: a 200 that is empty
// or about the identity's own things is no finding, and a write counts only when the owner sees
// its effect. Controls come first: the API must refuse the request without a token (else that is
// missing authentication), the owner must be able to do it, and the identity under test must be
// able to do it to its own things (else a refusal proves nothing about ownership).

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
)

// authzRun is one experiment of an authz check: its probe and timeline.
type authzRun struct {
	env   *Env
	meta  Meta
	p     *probe.Probe
	start time.Time
	tl    timeline
}

func newAuthzRun(env *Env, meta Meta, p *probe.Probe) *authzRun {
	return &authzRun{env: env, meta: meta, p: p, start: time.Now()}
}

// mint gets id's token for this experiment; role says what it is for, in the evidence.
func (x *authzRun) mint(ctx context.Context, id *identity.Identity, role string) (identity.Token, error) {
	tok, err := id.Source.Token(ctx)
	if err != nil {
		return tok, fmt.Errorf("identity %q (%s): get token: %w", id.Name, role, x.env.Target.Redactor.Error(err))
	}
	x.tl.add(time.Now(), finding.EventToken, fmt.Sprintf("token for %s (%s), %s", id.Name, id.Source.Kind(), role), nil, time.Time{}, time.Time{})
	return tok, nil
}

// event adds r to the timeline as kind, with detail.
func (x *authzRun) event(kind, detail string, r *probe.Result) {
	if r == nil {
		x.tl.add(time.Now(), kind, detail, nil, time.Time{}, time.Time{})
		return
	}
	x.tl.add(r.Response.Sent, kind, x.env.Target.Redactor.String(detail), resultExchange(x.env.Target.Redactor, r), r.Response.Sent, r.Response.Received)
}

// events adds each result of a chain to the timeline.
func (x *authzRun) events(kind, detail string, rs []*probe.Result) {
	for _, r := range rs {
		x.event(kind, detail, r)
	}
}

// evidence is the timeline in ms from the start of the experiment.
func (x *authzRun) evidence() []finding.Event { return x.tl.relativeTo(x.start) }

// pair is what an experiment between two identities holds: the check's owner and the identity under
// test, a token of each minted for the experiment, and the chains that make the owner's objects
// (and remove them when the experiment ends).
type pair struct {
	owner, id       *identity.Identity
	ownerTok, idTok identity.Token
	ownerCh         *chains
}

// forEachPair runs one experiment per probe between the check's owner and the identity under test.
// admit says why a probe cannot run, or nil; ownerRole and idRole name the two in the evidence.
func forEachPair(ctx context.Context, env *Env, meta Meta, ownerRole, idRole string,
	admit func(p *probe.Probe, id *identity.Identity) error,
	run func(ctx context.Context, x *authzRun, two pair) (*finding.Finding, error)) ([]finding.Finding, error) {
	owner, ok := env.Target.Identities[env.Plan.Owner]
	if !ok {
		return nil, skip("%s needs an owner: %s (hint: set checks.%s.owner)", meta.ID, ownerRole, meta.ID)
	}
	return forEachProbe(ctx, env, meta.ID, func(ctx context.Context, p *probe.Probe, id *identity.Identity) (*finding.Finding, error) {
		if err := admit(p, id); err != nil {
			return nil, err
		}
		if id.Name == owner.Name {
			return nil, fmt.Errorf("probe %q runs as %s, the check's owner: nothing to try (hint: remove its as, or name another owner)", p.Name, id.Name)
		}
		x := newAuthzRun(env, meta, p)
		two := pair{owner: owner, id: id}
		var err error
		if two.ownerTok, err = x.mint(ctx, owner, ownerRole); err != nil {
			return nil, err
		}
		if two.idTok, err = x.mint(ctx, id, idRole); err != nil {
			return nil, err
		}
		two.ownerCh = newChains(env, meta.ID, p, owner, owner.Name)
		defer two.ownerCh.teardown(ctx, nil)
		return run(ctx, x, two)
	})
}

// withToken returns vars with tok's token variables instead of whoever's they held.
func withToken(vars probe.Vars, tok identity.Token) probe.Vars {
	v := maps.Clone(vars)
	maps.DeleteFunc(v, func(k string, _ string) bool { return k == "token" || strings.HasPrefix(k, "token.") })
	maps.Copy(v, tok.Vars())
	return v
}

// send sends q with vars as tok's identity. Its extract is left out: what the identity under test
// gets back is judged, not used.
func (x *authzRun) send(ctx context.Context, q *probe.Probe, vars probe.Vars, tok identity.Token) (*probe.Result, error) {
	c := *q
	c.Extract = nil
	r, err := c.Do(ctx, x.env.Target.Client, withToken(vars, tok))
	if err != nil {
		return nil, fmt.Errorf("probe %q: %w", x.p.Name, x.env.Target.Redactor.Error(err))
	}
	return r, nil
}

// object makes the object an experiment acts on, as ch's identity (its token tok): with the
// probe's setup, or, without one, by picking it out of that identity's list with the list's
// extract. It returns the probe's variables for it.
func (x *authzRun) object(ctx context.Context, ch *chains, tok identity.Token, whose string) (probe.Vars, error) {
	vars := ch.begin(tok)
	if len(x.p.Setup) > 0 {
		results, err := ch.setup(ctx, vars)
		x.events(finding.EventSetup, "setup as "+whose, results)
		return vars, err
	}
	if x.p.List == nil || len(x.p.List.Extract) == 0 {
		return nil, skip("probe %q names no object: give it a setup, or a list with an extract (hint: see probes.%s)", x.p.Name, x.p.Name)
	}
	r, err := x.p.List.Do(ctx, x.env.Target.Client, vars)
	if r != nil {
		x.event(finding.EventSetup, whose+"'s list, to find an object of "+whose+"'s", r)
	}
	if err != nil {
		return nil, inconclusive("%s's list (%s) did not name an object: %v (hint: the list's extract must pick an object %s owns)", whose, x.p.List.Endpoint(), x.env.Target.Redactor.Error(err), whose)
	}
	if r.Outcome != probe.Accepted {
		return nil, inconclusive("%s's list (%s) answered %d, so no object of %s's was found", whose, x.p.List.Endpoint(), r.Response.Status, whose)
	}
	maps.Copy(vars, r.Extracted)
	return vars, nil
}

// objectIDs are the values that name the object the probe addresses: the variables its path and
// body use that neither the config's vars, a unique value nor a token gives, so a setup or a list
// extracted them.
func objectIDs(env *Env, p *probe.Probe, vars probe.Vars) []string {
	var ids []string
	for _, name := range probe.VarNames(p.Path + " " + p.Body) {
		_, configured := env.Target.Vars[name]
		if configured || name == "token" || strings.HasPrefix(name, "token.") || slices.Contains(probe.UniqueNames, name) {
			continue
		}
		if v := vars[name]; v != "" && !slices.Contains(ids, v) {
			ids = append(ids, v)
		}
	}
	return ids
}

// listed reports whether the identity tok stands for lists the object named by ids: then it is
// meant to see it. Its list being refused is a failed control.
func (x *authzRun) listed(ctx context.Context, vars probe.Vars, tok identity.Token, who string, ids []string) (bool, error) {
	r, err := x.send(ctx, x.p.List, vars, tok)
	if err != nil {
		return false, err
	}
	x.event(finding.EventControl, who+"'s own list: what "+who+" may see", r)
	if r.Outcome != probe.Accepted {
		return false, inconclusive("%s's own list (%s) answered %d, so what %s may see could not be learned (hint: check the probe's list request and %s's permissions)", who, x.p.List.Endpoint(), r.Response.Status, who, who)
	}
	v, ok := viewOf(r.Response.Body)
	if !ok {
		return slices.ContainsFunc(ids, func(id string) bool { return strings.Contains(string(r.Response.Body), id) }), nil
	}
	for _, leaf := range v {
		if slices.Contains(ids, leaf) {
			return true, nil
		}
	}
	return false, nil
}

// readBack reads the object back with the probe's verify chain; creds say who each step runs as
// (a step without as: the identity whose read it is). It returns the read, whatever its status.
func (x *authzRun) readBack(ctx context.Context, vars probe.Vars, creds probe.Credentials, detail string) (*probe.Result, error) {
	steps := x.p.Verify
	if len(steps) == 0 {
		return nil, fmt.Errorf("probe %q has no verify to read the object back (hint: add probes.%s.verify)", x.p.Name, x.p.Name)
	}
	v := maps.Clone(vars)
	red := x.env.Target.Redactor
	if lead := steps[:len(steps)-1]; len(lead) > 0 {
		results, extracted, err := probe.RunChain(ctx, x.env.Target.Client, "verify", lead, v, creds, red)
		x.events(finding.EventVerify, detail, results)
		if err != nil {
			return nil, inconclusive("probe %q: could not read the object back: %v", x.p.Name, red.Error(err))
		}
		maps.Copy(v, extracted)
	}
	read := steps[len(steps)-1]
	cv, err := creds(ctx, read.As)
	if err != nil {
		return nil, err
	}
	maps.Copy(v, cv)
	if cv["token"] == "" {
		read = read.WithoutCredential()
	}
	c := *read
	c.Extract = nil
	r, err := c.Do(ctx, x.env.Target.Client, v)
	if err != nil {
		return nil, fmt.Errorf("probe %q: verify: %w", x.p.Name, red.Error(err))
	}
	x.event(finding.EventVerify, detail, r)
	return r, nil
}

// attemptWrite sends the probe's write as attacker on what (the owner's object, named by vars)
// and decides by the owner reading it back: the owner reads it twice first, which also shows what
// changes by itself, then once after the attempt. A change or a disappearance after an accepted
// request is the finding; a refusal with the object unchanged passes.
func (x *authzRun) attemptWrite(ctx context.Context, owner, attacker *identity.Identity, ownerCh *chains, tokOwner, tokAttacker identity.Token, vars probe.Vars, what string) (*finding.Finding, error) {
	p := x.p
	op := operation(p.Method)
	asOwner := ownCreds(ownerCh, tokOwner)
	before, err := x.readOwn(ctx, vars, asOwner, owner.Name)
	if err != nil {
		return nil, err
	}
	again, err := x.readBack(ctx, vars, asOwner, "control: "+owner.Name+" reads its object again (what changes by itself)")
	if err != nil {
		return nil, err
	}
	volatile := volatileFields(before, again)

	r, err := x.send(ctx, p, vars, tokAttacker)
	if err != nil {
		return nil, err
	}
	x.event(finding.EventAccess, fmt.Sprintf("%s tries to %s %s", attacker.Name, op, what), r)
	after, err := x.readBack(ctx, vars, asOwner, owner.Name+" reads its object back")
	if err != nil {
		return nil, err
	}
	effect, undecided := effectOf(again, after, volatile)
	if effect == "gone" {
		ownerCh.markGone(vars)
	}
	outcome := authzOutcome(p, r.Response.Status)
	switch {
	case undecided:
		return nil, inconclusive("%s's read back of its object answered %d, neither found nor gone (hint: set the verify's accept and reject statuses)", owner.Name, after.Response.Status)
	case effect == "" && outcome == probe.Inconclusive:
		return nil, inconclusive("%s's request got %d, neither accepted nor refused, and the object is unchanged", attacker.Name, r.Response.Status)
	case effect == "":
		return nil, x.refusedBy(attacker.Name, r) // refused, or answered without doing it
	case outcome == probe.Rejected:
		return nil, inconclusive("%s's request was refused (%d), yet %s is %s: something else changed it (run one scan at a time against these identities)", attacker.Name, r.Response.Status, what, effect)
	}
	sev, why := authzSeverity(x.meta.ID, op, nil)
	summary := fmt.Sprintf("%s could %s %s through %s: it answered %d, and %s, reading it back, found it %s.",
		attacker.Name, op, what, p.Endpoint(), r.Response.Status, owner.Name, effect)
	return x.finding(attacker, sev, why, summary, &finding.Authz{Owner: owner.Name, Operation: op, Effect: effect}), nil
}

// refusedBy is how an attempt that did nothing ends. A 401 for an identity whose token the
// controls did not show valid (authz/bfla) is no pass: it may mean the token was refused, not
// the privilege.
func (x *authzRun) refusedBy(who string, r *probe.Result) error {
	if x.meta.ID == bflaID && r.Response.Status == http.StatusUnauthorized {
		return inconclusive("%s was refused with 401, as if its token were not valid, rather than 403 for a privilege it lacks: a pass needs the refusal of a token the API accepts (hint: check %s's token source; an API that answers 401 for a missing privilege cannot be told apart here)", who, who)
	}
	return nil
}

// ownCreds are the credentials of a chain's steps where those without as run with tok.
func ownCreds(ch *chains, tok identity.Token) probe.Credentials { return ch.creds(tok.Vars()) }

// Judging answers. An API refuses what is not the caller's in many ways: 401 and 403, 404 to hide
// that the object exists, 400 or 422 for a property it will not take. So any 4xx but 408 and 429
// counts as refused here, besides the probe's own reject statuses; 5xx, 408 and 429 decide nothing.
func authzOutcome(p *probe.Probe, status int) probe.Outcome {
	o := probe.Judge(status, p.Accept, p.Reject)
	if o == probe.Inconclusive && status >= 400 && status < 500 && status != http.StatusRequestTimeout && status != http.StatusTooManyRequests {
		return probe.Rejected
	}
	return o
}

// view is a JSON document flattened to its leaves: path (a.b.0.c) -> the leaf's text, a string
// raw and any other value as written. Containers that are empty are left out.
type view map[string]string

// viewBounds keep a hostile answer from costing much: a view stops at maxViewLeaves and does not
// descend below maxViewDepth.
const (
	maxViewLeaves = 5000
	maxViewDepth  = 32
)

// viewOf flattens body; ok is false when body is not a JSON object or array.
func viewOf(body []byte) (view, bool) {
	if !gjson.ValidBytes(body) {
		return nil, false
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() && !root.IsArray() {
		return nil, false
	}
	v := view{}
	var walk func(prefix string, r gjson.Result, depth int)
	walk = func(prefix string, r gjson.Result, depth int) {
		if len(v) >= maxViewLeaves || depth > maxViewDepth {
			return
		}
		if !r.IsObject() && !r.IsArray() {
			if r.Type == gjson.String {
				v[prefix] = r.Str
			} else {
				v[prefix] = r.Raw
			}
			return
		}
		i := 0
		r.ForEach(func(key, val gjson.Result) bool {
			name := key.String()
			if r.IsArray() {
				name = fmt.Sprint(i)
			}
			i++
			if prefix != "" {
				name = prefix + "." + name
			}
			walk(name, val, depth+1)
			return len(v) < maxViewLeaves
		})
	}
	walk("", root, 0)
	return v, true
}

// distinctive are the fields of the owner's view that tell the owner's thing from the other
// identity's own one (own; nil when not known: then every field but a boolean or null), leaving
// out the identifiers.
func distinctive(owner, own view, ids []string) []string {
	var out []string
	for path, val := range owner {
		switch {
		case val == "" || slices.Contains(ids, val):
		case own != nil && own[path] == val:
		case own == nil && (val == "true" || val == "false" || val == "null"):
		default:
			out = append(out, path)
		}
	}
	slices.Sort(out)
	return out
}

// reproduced returns which of fields the answer holds with the owner's value.
func reproduced(owner, answer view, fields []string) []string {
	var out []string
	for _, f := range fields {
		if a, ok := answer[f]; ok && a == owner[f] {
			out = append(out, f)
		}
	}
	return out
}

// carries reports whether any leaf of v is one of ids.
func carries(v view, ids []string) bool {
	for _, leaf := range v {
		if slices.Contains(ids, leaf) {
			return true
		}
	}
	return false
}

// volatileFields are the fields that differ between two reads with nothing written between them
// (a last-read stamp, a counter): an effect is never claimed on them.
func volatileFields(a, b *probe.Result) map[string]bool {
	out := map[string]bool{}
	va, okA := viewOf(a.Response.Body)
	vb, okB := viewOf(b.Response.Body)
	if !okA || !okB {
		return out
	}
	for k, x := range va {
		if vb[k] != x {
			out[k] = true
		}
	}
	for k := range vb {
		if _, ok := va[k]; !ok {
			out[k] = true
		}
	}
	return out
}

// effectOf compares two reads of an object, before and after a write: "gone" when the later read
// is refused (the verify's reject statuses, such as 404), "changed: fields" when it differs in
// fields that do not change by themselves, "" when it is unchanged. undecided is true when the
// later read answered neither.
func effectOf(before, after *probe.Result, volatile map[string]bool) (effect string, undecided bool) {
	switch after.Outcome {
	case probe.Rejected:
		return "gone", false
	case probe.Inconclusive:
		return "", true
	}
	vb, okB := viewOf(before.Response.Body)
	va, okA := viewOf(after.Response.Body)
	if !okA || !okB {
		if string(before.Response.Body) != string(after.Response.Body) {
			return "changed: the body", false
		}
		return "", false
	}
	var changed []string
	for k, x := range vb {
		if !volatile[k] && va[k] != x {
			changed = append(changed, k)
		}
	}
	for k := range va {
		if _, ok := vb[k]; !ok && !volatile[k] {
			changed = append(changed, k)
		}
	}
	if len(changed) == 0 {
		return "", false
	}
	slices.Sort(changed)
	return "changed: " + strings.Join(changed, ", "), false
}

// operation names what a probe's method does to an object.
func operation(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead:
		return "read"
	case http.MethodPut, http.MethodPatch:
		return "update"
	case http.MethodDelete:
		return "delete"
	}
	return "call"
}

// writes reports whether the probe changes something: the effect is then read back.
func writes(p *probe.Probe) bool {
	return p.Destructive || operation(p.Method) != "read"
}

// jsonEqual reports whether two JSON texts hold the same value (1e6 and 1000000 alike).
func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

// authzFinding builds a finding of an authz check with what every one of them carries.
func (x *authzRun) finding(id *identity.Identity, sev finding.Severity, why, summary string, proof *finding.Authz) *finding.Finding {
	return &finding.Finding{
		ID:             finding.StableID(x.meta.ID, x.p.Endpoint(), id.Name),
		Check:          x.meta.ID,
		Title:          x.meta.Title,
		Severity:       sev,
		SeverityReason: why,
		CWE:            x.meta.CWE,
		Endpoint:       x.p.Endpoint(),
		Probe:          x.p.Name,
		Identity:       id.Name,
		Summary:        x.env.Target.Redactor.String(summary),
		Authz:          proof,
		Evidence:       x.evidence(),
		Remediation:    x.meta.Remediation,
		References:     x.meta.References,
	}
}
