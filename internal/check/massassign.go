package check

// authz/mass-assignment proves broken object property level authorization (OWASP API3, CWE-915):
// a create or update request that carries properties the client must not set (role, is_admin,
// admin, scopes, balance, owner, and any the probe's assign names) and an API that binds the whole
// body to its model takes them. The request is sent first as configured and the object (or the
// identity) read back with the probe's verify, which shows the values the API sets by itself; then
// with the extra properties, all at once and, if that is refused, one by one; a property read back
// with the value sent, where the first read had another, took. The resources are the scan's own: a
// setup's, what the probe itself created (removed by its teardown), or an identity minted per
// experiment.

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tidwall/gjson"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
)

const massAssignmentID = "authz/mass-assignment"

// MassAssignment is the check authz/mass-assignment.
type MassAssignment struct{}

func (MassAssignment) Meta() Meta {
	return Meta{
		ID:    massAssignmentID,
		Title: "Request sets properties the API should own",
		CWE:   "CWE-915",
		Description: "Sends a create or update request as configured, then with extra properties that set privilege or " +
			"ownership (role, is_admin, admin, scopes, balance, owner, and the probe's assign), and reads the object or " +
			"the identity back; a property read back with the value sent, where it had another, took.",
		Remediation: remediationMassAssignment,
		References: []string{
			"https://owasp.org/API-Security/editions/2023/en/0xa3-broken-object-property-level-authorization/",
			"https://cwe.mitre.org/data/definitions/915.html",
			"https://cheatsheetseries.owasp.org/cheatsheets/Mass_Assignment_Cheat_Sheet.html",
		},
	}
}

const remediationMassAssignment = `Bind each request to an explicit list of the properties a client may set, never to the model itself, and refuse (400) or ignore everything else; set privilege, ownership and balances only in server code.
- Keep one input type per operation (create, update, admin update), separate from the stored model, so that adding a column to the model never makes it writable.
- Mark server-owned fields readOnly in the OpenAPI document and make the server enforce it.
Idioms: Flask: copy only allowed keys, e.g. user.display_name = data["display_name"] (or a marshmallow schema with load_only/dump_only fields and unknown=RAISE), never setattr for every key of request.json or Model(**request.json). FastAPI: a Pydantic input model without role (model_config = ConfigDict(extra="forbid")), separate from the response and database models. Django: a ModelForm or DRF serializer with an explicit fields list and read_only_fields = ["role", "owner"], never fields = "__all__". Express: pick the allowed keys (const {displayName} = req.body), never Object.assign(user, req.body) or Model.update(req.body). Go net/http: decode into a request struct with only the settable fields and DisallowUnknownFields, not into the stored struct. Spring: a DTO per operation, or @InitBinder with setAllowedFields, not the @Entity as @RequestBody.`

// assignment is one extra property and the value tried, as JSON.
type assignment struct{ name, value string }

// defaultAssignments are tried on every request: each would grant something if the API took it.
var defaultAssignments = []assignment{
	{"role", `"admin"`}, {"is_admin", `true`}, {"admin", `true`}, {"scopes", `["admin"]`}, {"balance", `1000000`},
}

// privilegeProperties raise what an identity may do; ownershipProperties move what it owns.
var (
	privilegeProperties = []string{"role", "roles", "is_admin", "admin", "scopes", "scope", "permissions", "is_superuser", "superuser", "is_staff", "groups"}
	ownershipProperties = []string{"owner", "owner_id", "user_id", "account_id", "tenant_id", "balance", "credit", "credits"}
)

func isPrivilegeProperty(name string) bool { return slices.Contains(privilegeProperties, name) }
func isOwnershipProperty(name string) bool { return slices.Contains(ownershipProperties, name) }

// assignments are what the probe's request carries besides its own properties: the defaults,
// owner when the check names one (its name is the value), and the probe's assign, whose values
// are JSON when they parse as JSON and strings otherwise.
func assignments(p *probe.Probe, owner string) []assignment {
	out := slices.Clone(defaultAssignments)
	set := func(name, value string) {
		if i := slices.IndexFunc(out, func(a assignment) bool { return a.name == name }); i >= 0 {
			out[i].value = value
			return
		}
		out = append(out, assignment{name, value})
	}
	if owner != "" {
		v, _ := json.Marshal(owner)
		set("owner", string(v))
	}
	for _, name := range slices.Sorted(maps.Keys(p.Assign)) {
		v := p.Assign[name]
		if !json.Valid([]byte(v)) {
			b, _ := json.Marshal(v)
			v = string(b)
		}
		set(name, v)
	}
	return out
}

func (c MassAssignment) Run(ctx context.Context, env *Env) ([]finding.Finding, error) {
	meta := c.Meta()
	return forEachProbe(ctx, env, meta.ID, func(ctx context.Context, p *probe.Probe, id *identity.Identity) (*finding.Finding, error) {
		if !writes(p) || p.Body == "" || len(p.Verify) == 0 {
			return nil, skip("probe %q is not a create or update request with a body and a verify that reads the object back", p.Name)
		}
		return newAuthzRun(env, meta, p).massAssign(ctx, id, env.Plan.Verifier, env.Plan.Owner)
	})
}

// massAssign runs one experiment with one token, so that an identity minted per experiment (a new
// account) is the same account throughout.
func (x *authzRun) massAssign(ctx context.Context, id *identity.Identity, verifier, owner string) (*finding.Finding, error) {
	p := x.p
	tok, err := x.mint(ctx, id, "the identity under test")
	if err != nil {
		return nil, err
	}
	ch := newChains(x.env, x.meta.ID, p, id, verifier)
	defer ch.teardown(ctx, nil)
	reader := id.Name
	if verifier != "" {
		reader = verifier
	}
	// Verify steps without as read back as the verifier, else as the identity with this token.
	mine := ch.creds(tok.Vars())
	creds := func(ctx context.Context, as string) (probe.Vars, error) {
		if as == "" && verifier != "" {
			as = verifier
		}
		return mine(ctx, as)
	}

	vars := ch.begin(tok)
	results, err := ch.setup(ctx, vars)
	x.events(finding.EventSetup, "setup", results)
	if err != nil {
		return nil, err
	}
	rendered, err := probe.Render(p.Body, vars)
	if err != nil {
		return nil, fmt.Errorf("probe %q: body: %w", p.Name, err)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal([]byte(rendered), &body); err != nil || body == nil {
		return nil, skip("probe %q: its body is not a JSON object, so no property can be added to it", p.Name)
	}
	var extras []assignment
	for _, a := range assignments(p, owner) {
		if _, sets := body[a.name]; !sets {
			extras = append(extras, a)
		}
	}

	// Control: the request as configured is accepted, and reading back shows the values the API
	// gives these properties by itself.
	r0, v0, err := x.assign(ctx, ch, vars, tok, body, nil)
	if err != nil {
		return nil, err
	}
	x.event(finding.EventControl, "the request as configured", r0)
	if r0.Outcome != probe.Accepted {
		return nil, inconclusive("%s refused the request as configured (%d), so nothing shows what extra properties would do (hint: check the probe's body and %s's permissions)", p.Endpoint(), r0.Response.Status, id.Name)
	}
	base, err := x.readBack(ctx, v0, creds, "control: "+reader+" reads it back (the values the API sets)")
	if err != nil {
		return nil, err
	}
	if base.Outcome != probe.Accepted {
		return nil, inconclusive("%s could not read it back: the verify answered %d (hint: check the verify's accept statuses)", reader, base.Response.Status)
	}

	// All the extras at once, then, if that is refused, one by one: an API that refuses a value of
	// the wrong type would otherwise hide one it takes.
	batches := [][]assignment{extras}
	var took []assignment
	var undecided []int
	for len(batches) > 0 {
		batch := batches[0]
		batches = batches[1:]
		r, v, err := x.assign(ctx, ch, vars, tok, body, batch)
		if err != nil {
			return nil, err
		}
		x.event(finding.EventAccess, "the request with extra properties "+describeAssignments(batch), r)
		switch authzOutcome(p, r.Response.Status) {
		case probe.Inconclusive:
			undecided = append(undecided, r.Response.Status)
			continue
		case probe.Rejected:
			if len(batch) > 1 {
				for _, a := range batch {
					batches = append(batches, []assignment{a})
				}
			}
			continue
		}
		back, err := x.readBack(ctx, v, creds, reader+" reads it back")
		if err != nil {
			return nil, err
		}
		if back.Outcome != probe.Accepted {
			return nil, inconclusive("%s could not read it back after the request with extra properties: the verify answered %d", reader, back.Response.Status)
		}
		for _, a := range batch {
			if assigned(base, back, a) && !slices.Contains(took, a) {
				took = append(took, a)
			}
		}
	}
	if len(took) == 0 {
		if len(undecided) > 0 {
			return nil, inconclusive("%d request(s) with extra properties got a status neither accepted nor refused (%v), so whether they take is unknown", len(undecided), undecided)
		}
		return nil, nil
	}
	var names, fields []string
	for _, a := range took {
		names = append(names, a.name)
		was, ok := property(base.Response.Body, a.name)
		if !ok {
			was = "absent"
		}
		fields = append(fields, fmt.Sprintf("%s=%s (was %s)", a.name, a.value, was))
	}
	sev, why := authzSeverity(x.meta.ID, "", names)
	op := "update"
	if p.Method == "POST" {
		op = "create"
	}
	summary := fmt.Sprintf("%s set %s through %s: %s, reading it back, found %s.",
		id.Name, strings.Join(names, ", "), p.Endpoint(), reader, strings.Join(fields, ", "))
	return x.finding(id, sev, why, summary, &finding.Authz{Operation: op, Fields: fields}), nil
}

// assign sends the probe with body plus extras as tok's identity, and returns the variables that
// name what it acted on: vars, and what the probe extracted when it created something (a create
// request), which is then recorded for the probe's teardown.
func (x *authzRun) assign(ctx context.Context, ch *chains, vars probe.Vars, tok identity.Token, body map[string]json.RawMessage, extras []assignment) (*probe.Result, probe.Vars, error) {
	b := maps.Clone(body)
	for _, a := range extras {
		b[a.name] = json.RawMessage(a.value)
	}
	raw, err := json.Marshal(b)
	if err != nil {
		return nil, nil, fmt.Errorf("probe %q: body: %w", x.p.Name, err)
	}
	q := *x.p
	q.Body = strings.ReplaceAll(string(raw), "{{", `{\u007b`) // sent as is: nothing left to fill in
	r, err := q.Do(ctx, x.env.Target.Client, withToken(vars, tok))
	v := maps.Clone(vars)
	if r != nil && r.Outcome == probe.Accepted && len(r.Extracted) > 0 {
		maps.Copy(v, r.Extracted)
		ch.adopt(v)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("probe %q: %w", x.p.Name, x.env.Target.Redactor.Error(err))
	}
	return r, v, nil
}

// assigned reports whether a took: back holds the value sent, and base, read before, did not.
func assigned(base, back *probe.Result, a assignment) bool {
	now, ok := property(back.Response.Body, a.name)
	if !ok || !jsonEqual(now, a.value) {
		return false
	}
	was, ok := property(base.Response.Body, a.name)
	return !ok || !jsonEqual(was, a.value)
}

// property finds the value of the first property called name in a JSON document, nearest the
// top first (an account is often wrapped: {"user": {"role": ...}}), as JSON text.
func property(body []byte, name string) (string, bool) {
	if !gjson.ValidBytes(body) {
		return "", false
	}
	level := []gjson.Result{gjson.ParseBytes(body)}
	for depth := 0; depth < maxViewDepth && len(level) > 0; depth++ {
		var next []gjson.Result
		for _, r := range level {
			if !r.IsObject() && !r.IsArray() {
				continue
			}
			found := ""
			r.ForEach(func(key, val gjson.Result) bool {
				if r.IsObject() && key.String() == name {
					found = val.Raw
					return false
				}
				if len(next) < maxViewLeaves {
					next = append(next, val)
				}
				return true
			})
			if found != "" {
				return found, true
			}
		}
		level = next
	}
	return "", false
}

func describeAssignments(as []assignment) string {
	parts := make([]string, len(as))
	for i, a := range as {
		parts[i] = a.name + "=" + a.value
	}
	return strings.Join(parts, ", ")
}
