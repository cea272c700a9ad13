package check

// authz/bola proves broken object level authorization (OWASP API1, CWE-639): an identity reads,
// changes or deletes an object that belongs to another, through an operation that takes the
// object's id and never asks whose it is. The owner (the check's owner) makes a fresh object with
// the probe's setup, or finds one in its own list; the identity under test then sends the probe on
// it. A read is a finding only when the answer is the owner's object: it carries the object's
// identifier and fields of the owner's own view that the identity's own object does not have (an
// empty answer, or one about the identity's own things, is not). A write is a finding only when
// the owner, reading the object back, finds it changed or gone. Shared objects are left alone:
// one the config marks shared, or one the identity under test finds in its own list.

import (
	"context"
	"fmt"
	"strings"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
)

// BOLA is the check authz/bola.
type BOLA struct{}

func (BOLA) Meta() Meta {
	return Meta{
		ID:    "authz/bola",
		Title: "Another identity's object reached by its id",
		CWE:   "CWE-639",
		Description: "Has the owner create (or list) an object, then sends each configured operation on it as another " +
			"identity; a read is proven by an answer that carries the owner's object (its identifier and the owner's " +
			"fields), a write by the owner reading it back changed or gone. Objects the identity lists, or the config " +
			"marks shared, are left out.",
		Remediation: remediationBOLA,
		References: []string{
			"https://owasp.org/API-Security/editions/2023/en/0xa1-broken-object-level-authorization/",
			"https://cwe.mitre.org/data/definitions/639.html",
			"https://cheatsheetseries.owasp.org/cheatsheets/Authorization_Cheat_Sheet.html",
		},
	}
}

const remediationBOLA = `Look up every object through the caller: scope the query to what the authenticated identity may see, and answer 404 for anything else, for reads and writes alike.
- Make the owner (or tenant) part of the lookup rather than a check after it, so that no handler can forget it: a repository method that takes the caller, a query filter applied to every request, or row-level security in the database.
- Do not rely on ids being hard to guess (UUIDs): they leak through lists, logs and links.
Idioms: Flask: Note.query.filter_by(id=note_id, owner_id=current_user.id).first_or_404() instead of Note.query.get(note_id). FastAPI: a dependency that loads the object with the current user (Depends(get_owned_note)) and raises HTTPException(404). Django: get_object_or_404(Note, pk=pk, owner=request.user), or a queryset method such as Note.objects.for_user(request.user); in Django REST framework, get_queryset() filtered by request.user and an object permission. Express: findOne({_id: req.params.id, owner: req.user.id}) and 404 when null. Go net/http: load with WHERE id = $1 AND owner = $2, taking the owner from the verified grant (with tocsin's guard, guard.GrantFrom(r.Context()).Subject). Spring: @PostAuthorize("returnObject.owner == authentication.name") or a repository method findByIdAndOwner(id, owner).`

func (c BOLA) Run(ctx context.Context, env *Env) ([]finding.Finding, error) {
	admit := func(p *probe.Probe, id *identity.Identity) error {
		switch {
		case p.Shared:
			return passedBecause("the config marks its objects shared with every identity (probes.%s.shared), so %s may reach them", p.Name, id.Name)
		case writes(p) && (len(p.Setup) == 0 || len(p.Verify) == 0):
			return skip("probe %q changes an object: it runs only on an object its setup created, and needs a verify that reads it back", p.Name)
		}
		return nil
	}
	return forEachPair(ctx, env, c.Meta(), "the owner of the objects", "the identity under test", admit,
		func(ctx context.Context, x *authzRun, two pair) (*finding.Finding, error) { return x.bola(ctx, two) })
}

// bola runs one experiment: owner's object, attacker's request.
func (x *authzRun) bola(ctx context.Context, two pair) (*finding.Finding, error) {
	p := x.p
	owner, attacker := two.owner, two.id
	tokOwner, tokAttacker, ownerCh := two.ownerTok, two.idTok, two.ownerCh
	attackerCh := newChains(x.env, x.meta.ID, p, attacker, attacker.Name)
	defer attackerCh.teardown(ctx, nil)

	// The owner's object, and what the identity under test is meant to see.
	vars, err := x.object(ctx, ownerCh, tokOwner, owner.Name)
	if err != nil {
		return nil, err
	}
	ids := objectIDs(x.env, p, vars)
	if p.List != nil {
		seen, err := x.listed(ctx, vars, tokAttacker, attacker.Name, ids)
		if err != nil {
			return nil, err
		}
		if seen {
			return nil, passedBecause("%s lists %s's object (%s): it is shared with %s, so reaching it is no flaw", attacker.Name, owner.Name, p.List.Endpoint(), attacker.Name)
		}
	}

	// Controls: the API wants a token here; the owner reaches its own object; the identity under
	// test can use the operation on an object of its own.
	if err := authControl(ctx, x.env, p, vars, &x.tl); err != nil {
		return nil, err
	}
	if writes(p) {
		return x.bolaWrite(ctx, owner, attacker, ownerCh, attackerCh, tokOwner, tokAttacker, vars)
	}
	ownerRead, err := x.send(ctx, p, vars, tokOwner)
	if err != nil {
		return nil, err
	}
	x.event(finding.EventControl, owner.Name+" reads its own object", ownerRead)
	if ownerRead.Outcome != probe.Accepted {
		return nil, inconclusive("%s could not read its own object: %s answered %d (hint: check the probe's accept statuses and %s's permissions)", owner.Name, p.Endpoint(), ownerRead.Response.Status, owner.Name)
	}
	own, err := x.ownRead(ctx, attacker, attackerCh, tokAttacker)
	if err != nil {
		return nil, err
	}

	r, err := x.send(ctx, p, vars, tokAttacker)
	if err != nil {
		return nil, err
	}
	x.event(finding.EventAccess, attacker.Name+" asks for "+owner.Name+"'s object", r)
	switch authzOutcome(p, r.Response.Status) {
	case probe.Rejected:
		return nil, nil
	case probe.Inconclusive:
		return nil, inconclusive("%s's request for %s's object got %d, neither accepted nor refused (hint: set the probe's accept and reject statuses)", attacker.Name, owner.Name, r.Response.Status)
	}
	fields, proven, why := sameObject(ownerRead, r, own, ids)
	if !proven {
		if why != "" {
			return nil, inconclusive("%s", why)
		}
		return nil, passedBecause("%s's request was answered %d, but not with %s's object (empty, or about %s's own)", attacker.Name, r.Response.Status, owner.Name, attacker.Name)
	}
	sev, sevWhy := authzSeverity(x.meta.ID, "read", nil)
	summary := fmt.Sprintf("%s read %s's object through %s: the answer (%d) is %s's own view of it, %s.",
		attacker.Name, owner.Name, p.Endpoint(), r.Response.Status, owner.Name, describeFields(fields, attacker.Name))
	return x.finding(attacker, sev, sevWhy, summary, &finding.Authz{Owner: owner.Name, Operation: "read", Fields: fields}), nil
}

// ownRead is the control that the identity under test can read an object of its own, which also
// shows what its own objects look like (nil when it has none to read: no setup, and its list names
// none).
func (x *authzRun) ownRead(ctx context.Context, attacker *identity.Identity, ch *chains, tok identity.Token) (*probe.Result, error) {
	vars, err := x.object(ctx, ch, tok, attacker.Name)
	if err != nil && len(x.p.Setup) == 0 && !fatal(ctx, err) {
		return nil, nil // its list answered (the list control): it authenticates, and owns nothing to compare
	}
	if err != nil {
		return nil, x.ownObjectErr(ctx, attacker.Name, err)
	}
	r, err := x.send(ctx, x.p, vars, tok)
	if err != nil {
		return nil, err
	}
	x.event(finding.EventControl, attacker.Name+" reads its own object", r)
	if r.Outcome != probe.Accepted {
		return nil, inconclusive("%s could not read an object of its own either (%s answered %d): the refusal of another's would say nothing about who owns what (hint: give %s the permission the operation needs, or test it with authz/bfla)", attacker.Name, x.p.Endpoint(), r.Response.Status, attacker.Name)
	}
	return r, nil
}

// ownObjectErr is a failed control: who could not make an object of its own with the setup, so
// nothing it is refused says anything about ownership. A spent budget or an interrupt stays an error.
func (x *authzRun) ownObjectErr(ctx context.Context, who string, err error) error {
	if fatal(ctx, err) {
		return err
	}
	return inconclusive("control: %s could not make an object of its own with the setup, to show it may use %s at all: %v", who, x.p.Endpoint(), x.env.Target.Redactor.Error(err))
}

// sameObject decides whether answer is the owner's object: it holds fields of the owner's view
// that the attacker's own object (own, when known) does not, with the owner's values, and the
// object's identifier when the owner's view has it (else two such fields). why, when not empty,
// says that the evidence cannot decide.
func sameObject(ownerRead, answer, own *probe.Result, ids []string) (fields []string, proven bool, why string) {
	ov, okO := viewOf(ownerRead.Response.Body)
	av, okA := viewOf(answer.Response.Body)
	if !okO || !okA {
		// Not JSON: only the very same bytes, which the identity's own object does not give, count.
		same := len(answer.Response.Body) > 0 && string(answer.Response.Body) == string(ownerRead.Response.Body) &&
			(own == nil || string(own.Response.Body) != string(ownerRead.Response.Body))
		if same {
			return []string{"(the whole body)"}, true, ""
		}
		return nil, false, ""
	}
	var ownView view
	if own != nil {
		ownView, _ = viewOf(own.Response.Body)
	}
	candidates := distinctive(ov, ownView, ids)
	if len(candidates) == 0 {
		if carries(av, ids) {
			return nil, false, "the answer carries the object's identifier, but nothing in the owner's view tells its object from one of the identity's own (hint: give the setup's object a distinctive field, such as a unique name: {{uuid}})"
		}
		return nil, false, ""
	}
	fields = reproduced(ov, av, candidates)
	needID := carries(ov, ids)
	switch {
	case len(fields) == 0:
		return nil, false, ""
	case needID && !carries(av, ids):
		return nil, false, ""
	case !needID && len(fields) < 2:
		return nil, false, ""
	}
	return fields, true, ""
}

// describeFields says what a read reproduced, for a summary.
func describeFields(fields []string, attacker string) string {
	if len(fields) == 1 && strings.HasPrefix(fields[0], "(") {
		return "byte for byte, unlike " + attacker + "'s own"
	}
	return fmt.Sprintf("with %d field(s) %s's own object does not have (%s)", len(fields), attacker, strings.Join(fields, ", "))
}

// bolaWrite tries a write on the owner's object: controls first (the identity under test writes to
// an object of its own and sees the effect), then the attempt and the owner's read back.
func (x *authzRun) bolaWrite(ctx context.Context, owner, attacker *identity.Identity, ownerCh, attackerCh *chains, tokOwner, tokAttacker identity.Token, vars probe.Vars) (*finding.Finding, error) {
	ownVars, err := x.object(ctx, attackerCh, tokAttacker, attacker.Name)
	if err != nil {
		return nil, x.ownObjectErr(ctx, attacker.Name, err)
	}
	if err := x.ownWrite(ctx, attackerCh, tokAttacker, ownVars, attacker.Name, ""); err != nil {
		return nil, err
	}
	return x.attemptWrite(ctx, owner, attacker, ownerCh, tokOwner, tokAttacker, vars, owner.Name+"'s object")
}

// readOwn is the control that who can read its own object back before anything is tried on it.
func (x *authzRun) readOwn(ctx context.Context, vars probe.Vars, creds probe.Credentials, who string) (*probe.Result, error) {
	r, err := x.readBack(ctx, vars, creds, "control: "+who+" reads its object")
	if err != nil {
		return nil, err
	}
	if r.Outcome != probe.Accepted {
		return nil, inconclusive("%s could not read its own object back: the verify answered %d (hint: check the verify's accept statuses and %s's permissions)", who, r.Response.Status, who)
	}
	return r, nil
}

// ownWrite is the control that who can do the probe's write on its own object (vars) and that
// reading back shows the effect; otherwise a refusal, or an unchanged read, of the attempt on
// another's would prove nothing. what names the control in the evidence ("" for "its own object").
func (x *authzRun) ownWrite(ctx context.Context, ch *chains, tok identity.Token, vars probe.Vars, who, what string) error {
	if what == "" {
		what = "its own object"
	}
	creds := ownCreds(ch, tok)
	before, err := x.readOwn(ctx, vars, creds, who)
	if err != nil {
		return err
	}
	r, err := x.send(ctx, x.p, vars, tok)
	if err != nil {
		return err
	}
	x.event(finding.EventControl, fmt.Sprintf("%s does it to %s", who, what), r)
	if r.Outcome != probe.Accepted {
		return inconclusive("%s could not %s %s either (%s answered %d): a refusal of the attempt would say nothing about authorization (hint: give %s the permission the operation needs)", who, operation(x.p.Method), what, x.p.Endpoint(), r.Response.Status, who)
	}
	after, err := x.readBack(ctx, vars, creds, fmt.Sprintf("control: %s reads %s back", who, what))
	if err != nil {
		return err
	}
	effect, _ := effectOf(before, after, nil)
	if effect == "gone" {
		ch.markGone(vars)
	}
	if effect == "" {
		return inconclusive("%s's own %s of %s was accepted (%d), but reading it back showed no change: the verify cannot see this operation's effect, so an attempt on another's could not be proven (hint: make the probe change a field the verify reads)", who, operation(x.p.Method), what, r.Response.Status)
	}
	return nil
}
