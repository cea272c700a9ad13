package check

// Check selection from the API's surface. When the config gives openapi: or har:, a check that names
// no probes picks them among the operations, by the rule below that fits it, and so does every
// check when the config lists none. Each choice is recorded on the operation with why, for the
// report's surface section; a check that fits no operation says why not.
//
//   - toctou/revoked-token-accepted: a read (GET, HEAD) that needs a token; a revoked one must stop
//     reading it.
//   - toctou/scope-downgrade-ignored: a read whose every security alternative needs a scope that the
//     identity's downgrade removes (identities.NAME.downgrade.removes): the config says which scopes
//     a downgrade takes away, tocsin never guesses it.
//   - toctou/inflight-revocation: a DELETE with a setup that creates the resource and a GET on the
//     same path to read it back.
//   - race/limit-overrun: an operation the config marks single_use, never guessed.
//   - auth/missing: every operation that needs a token (writes only where destructive allows);
//     public operations are listed as public, never flagged.
//   - jwt/*: every read that needs a token, each as the identity that answers its scheme (per
//     operation, like auth/missing); jwt/weak-hmac-secret one read per issuer. On a token that
//     turns out not to be a JWT the experiment is not applicable, which keeps the scan complete.
//   - authz/bola: an operation on an object path whose object a setup creates (an OpenAPI link, or
//     the POST on its collection) and whose collection has a list (GET). Whose the object is comes
//     from construction, not from the description: the owner (the check's, else the first identity)
//     runs the setup, another identity tries the operation. The list is needed to learn what that
//     identity may see: an object it lists is shared, out of scope; without a list (GET
//     /items/{id}, a catalogue anyone may read) nothing is claimed. Writes only where destructive
//     allows, with a GET on the same path to read the object back.
//   - authz/bfla: an operation whose every security alternative needs a scope that the owner's
//     oauth2 scopes have and the identity under test's lack; both identities' scopes must be known
//     from the config. The probe is marked privileged. A privilege no scope expresses (a role the
//     server looks up) is not in the description, so such operations need hand-written probes.
//   - authz/mass-assignment: a create or update (with a body) whose request or success response
//     schema marks properties readOnly, with a GET that reads it back, acting on what the scan made:
//     an object a setup creates, or the calling identity itself (PATCH /account) when an identity
//     is minted per experiment (the probe runs as it, and identities so minted are tried first).
//     The readOnly properties are tried besides the defaults (role, is_admin, ...).
//
// The identity under test is the check's, or (with no checks listed) the first identity in the
// config that has what the check needs (a revoke hook and a source of fresh tokens; a downgrade
// with removes) and that may do the operation: its oauth2 scopes, when known, cover what the
// operation needs, and its security scheme, when known (identities.NAME.scheme, or the oauth2 flow
// whose tokenUrl is its token_url), is what an alternative of the operation needs alone. The in-flight
// check's verifier is the check's, or the first other identity that may read the resource back, or
// anonymous when that read is public.

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/identity"
	"github.com/tocsin/tocsin/internal/probe"
	"github.com/tocsin/tocsin/internal/surface"
	"github.com/tocsin/tocsin/internal/target"
)

// selector is one check's rule: whether op fits it as identity id, and why.
type selector struct {
	// perOp: each operation is tested as the first identity that fits it (in config order), not
	// every operation as one identity: an API whose operations answer different issuers (a
	// scheme per login) is tested with each operation's own. With oneEach, one operation per
	// identity is enough (a weak secret belongs to the issuer, not the route); one without a
	// setup is preferred.
	perOp, oneEach bool
	// identity says what the identity under test lacks for this check, or "" when it has all.
	identity func(t *target.Target, name string, id *identity.Identity) string
	// fits says why op fits, or "" when it does not.
	fits func(t *target.Target, name string, op *target.Op) string
	// pair, for the checks between two identities (authz/bola, authz/bfla), replaces fits: why op
	// fits with owner entitled to it and name under test. The owner is the check's, else the first
	// identity in the config; the identity under test is another.
	pair func(t *target.Target, owner, name string, op *target.Op) string
	// perExperimentFirst tries identities minted per experiment first (authz/mass-assignment: what
	// it sets on an identity goes with the account).
	perExperimentFirst bool
	// none says why no operation fits, when none does.
	none string
}

var selectors = map[string]selector{
	config.CheckRevokedTokenAccepted: {
		identity: canRevoke,
		fits: func(t *target.Target, name string, op *target.Op) string {
			if !op.Read() || op.Public() || !covers(t.Surface, name, op.Operation) {
				return ""
			}
			return fmt.Sprintf("a %s that needs %s: a revoked token must stop reading it", op.Method, needs(op.Operation))
		},
		none: "no read (GET or HEAD) that needs a token has a probe",
	},
	config.CheckScopeDowngrade: {
		identity: func(t *target.Target, name string, id *identity.Identity) string {
			switch {
			case id.Downgrade == nil || id.Restore == nil:
				return "no downgrade and restore hooks"
			case len(t.Surface.Removes[name]) == 0:
				return fmt.Sprintf("its downgrade does not say which scopes it removes (hint: add identities.%s.downgrade.removes)", name)
			}
			return ""
		},
		fits: func(t *target.Target, name string, op *target.Op) string {
			removes := t.Surface.Removes[name]
			if !op.Read() || op.Public() || !covers(t.Surface, name, op.Operation) {
				return ""
			}
			var lost []string
			for _, req := range op.Security {
				i := slices.IndexFunc(req.Scopes(), func(s string) bool { return slices.Contains(removes, s) })
				if i < 0 {
					return "" // this alternative survives the downgrade
				}
				lost = append(lost, req.Scopes()[i])
			}
			slices.Sort(lost)
			return fmt.Sprintf("a %s that needs %s, which the downgrade of %s removes", op.Method, strings.Join(slices.Compact(lost), ", "), name)
		},
		none: "no read with a probe needs a scope that an identity's downgrade removes",
	},
	config.CheckInflightRevocation: {
		identity: canRevoke,
		fits: func(t *target.Target, name string, op *target.Op) string {
			p := t.Probes[op.Probe]
			if op.Method != "DELETE" || !p.Destructive || len(p.Setup) == 0 || len(p.Verify) == 0 || !covers(t.Surface, name, op.Operation) {
				return ""
			}
			return fmt.Sprintf("a DELETE with a setup that creates the resource and %s to read it back: revoked while in flight", p.Verify[len(p.Verify)-1].Endpoint())
		},
		none: "no DELETE has a probe with a setup that creates the resource and a GET on the same path to read it back (hint: allow the create and the DELETE under destructive)",
	},
	config.CheckLimitOverrun: {
		identity: func(*target.Target, string, *identity.Identity) string { return "" },
		fits: func(t *target.Target, name string, op *target.Op) string {
			p := t.Probes[op.Probe]
			if !op.SingleUse || !p.Destructive || len(p.Setup) == 0 && !t.Identities[name].PerExperiment || !covers(t.Surface, name, op.Operation) {
				return ""
			}
			return "marked single_use: synchronised copies must not succeed more often than sequential ones"
		},
		none: "no operation is marked single_use with a probe that creates what it uses (race/limit-overrun never guesses which actions are one-shot)",
	},
}

func init() {
	// auth/missing: every operation that needs a token is tried without one (writes only where
	// destructive allows, on what a setup creates); a public operation is listed, never flagged.
	selectors[config.CheckAuthMissing] = selector{
		perOp:    true,
		identity: func(*target.Target, string, *identity.Identity) string { return "" },
		fits: func(t *target.Target, name string, op *target.Op) string {
			p := t.Probes[op.Probe]
			if op.Public() || recorded(op.Operation) || !covers(t.Surface, name, op.Operation) || !op.Read() && (!p.Destructive || len(p.Setup) == 0) {
				return ""
			}
			return fmt.Sprintf("a %s that needs %s: it must refuse no token, a malformed one and one no issuer made", op.Method, needs(op.Operation))
		},
		none: "no operation that needs a token has a probe",
	}
	// jwt/*: every read that needs a token, as an identity whose scheme it needs: each route may
	// verify tokens its own way. A weak secret belongs to the issuer: one read per identity proves
	// it. An identity whose token turns out not to be a JWT (or of the wrong family) makes the
	// experiment not applicable, which keeps the scan complete.
	for _, id := range config.JWTChecks {
		selectors[id] = selector{
			perOp:    true,
			oneEach:  id == config.CheckJWTWeakSecret,
			identity: func(*target.Target, string, *identity.Identity) string { return "" },
			fits: func(t *target.Target, name string, op *target.Op) string {
				if !op.Read() || op.Public() || !covers(t.Surface, name, op.Operation) {
					return ""
				}
				return fmt.Sprintf("a %s that needs %s: a forged token must be refused there", op.Method, needs(op.Operation))
			},
			none: "no read that needs a token has a probe",
		}
	}
}

func init() {
	anyIdentity := func(*target.Target, string, *identity.Identity) string { return "" }
	// authz/bola: an operation on an object that a setup creates (an OpenAPI link, or the POST on
	// its collection), so that whose it is comes from construction: the owner creates it, the
	// identity under test tries the operation on it. The collection's list must be known too: an
	// object the identity under test lists is shared with it, and without the list that cannot be
	// learned. Writes need destructive and a GET that reads the object back.
	selectors[config.CheckBOLA] = selector{
		identity: anyIdentity,
		pair: func(t *target.Target, owner, name string, op *target.Op) string {
			p := t.Probes[op.Probe]
			if op.Public() || op.Creates == "" || p.List == nil || len(surface.PathParams(op.Path)) == 0 || p.Shared {
				return ""
			}
			if writes(p) && (!p.Destructive || len(p.Setup) == 0 || len(p.Verify) == 0) {
				return ""
			}
			creator := opByEndpoint(t.Surface, op.Creates)
			for _, who := range []string{owner, name} {
				if !covers(t.Surface, who, op.Operation) || creator != nil && !covers(t.Surface, who, creator.Operation) {
					return ""
				}
			}
			verb := "reads"
			if writes(p) {
				verb = operation(p.Method) + "s"
			}
			return fmt.Sprintf("a %s on an object %s creates, made by %s (the owner); %s %s it, and is out of scope where %s lists it", op.Method, op.Creates, owner, name, verb, p.List.Endpoint())
		},
		none: "no operation on an object has a setup that creates it (an OpenAPI link or the POST on its collection) and a list of the collection to learn what the identity under test may see (writes: allowed under destructive, with a GET to read the object back)",
	}
	// authz/bfla: an operation whose every security alternative needs a scope the owner's oauth2
	// source asks for and the identity under test's does not: the document says the privilege is
	// needed, and the config which identity holds it. An identity whose scopes are unknown is never
	// taken for one that lacks them.
	selectors[config.CheckBFLA] = selector{
		identity: func(t *target.Target, name string, _ *identity.Identity) string {
			if _, known := t.Surface.Scopes[name]; !known {
				return fmt.Sprintf("its scopes are unknown (hint: an oauth2 token source with scopes, identities.%s.token.oauth2.scopes)", name)
			}
			return ""
		},
		pair: func(t *target.Target, owner, name string, op *target.Op) string {
			p := t.Probes[op.Probe]
			have, known := t.Surface.Scopes[name]
			if _, ownerKnown := t.Surface.Scopes[owner]; !known || !ownerKnown || op.Public() || !covers(t.Surface, owner, op.Operation) {
				return ""
			}
			if writes(p) && (!p.Destructive || len(p.Setup) == 0 || len(p.Verify) == 0) {
				return ""
			}
			var lacks []string
			for _, req := range op.Security {
				sc := req.Scopes()
				i := slices.IndexFunc(sc, func(s string) bool { return !slices.Contains(have, s) })
				if i < 0 {
					return "" // this alternative is open to the identity under test
				}
				lacks = append(lacks, sc[i])
			}
			slices.Sort(lacks)
			return fmt.Sprintf("a %s that needs %s, which %s holds and %s's scopes lack (%s)", op.Method, needs(op.Operation), owner, name, strings.Join(slices.Compact(lacks), ", "))
		},
		none: "no operation needs a scope that the owner's oauth2 scopes have and the identity under test's lack (writes: allowed under destructive, with a setup and a GET to read back)",
	}
	// authz/mass-assignment: a create or update whose request or response schema marks properties
	// readOnly, with a GET that reads the object back, acting on what the scan made: an object a
	// setup created, or the calling identity itself when that identity is minted per experiment.
	selectors[config.CheckMassAssignment] = selector{
		identity:           anyIdentity,
		perExperimentFirst: true,
		fits: func(t *target.Target, name string, op *target.Op) string {
			p := t.Probes[op.Probe]
			switch {
			case op.Read() || p.Body == "" || !p.Destructive || len(p.Verify) == 0 || len(op.ReadOnly) == 0 || !covers(t.Surface, name, op.Operation):
				return ""
			case op.OnIdentity && (p.As != name || !perExperiment(t, name)):
				return "" // the probe runs as the identity minted per experiment it names
			case !op.OnIdentity && op.Creates == "":
				return ""
			}
			what := "an object its setup creates (" + op.Creates + ")"
			if op.OnIdentity {
				what = "the calling identity, minted per experiment"
			}
			return fmt.Sprintf("a %s on %s, whose schema marks %s readOnly; %s reads it back", op.Method, what, strings.Join(slices.Sorted(maps.Keys(op.ReadOnly)), ", "), p.Verify[len(p.Verify)-1].Endpoint())
		},
		none: "no create or update whose schema marks properties readOnly has a GET to read it back and acts on what the scan made (an object a setup creates, or an identity minted per experiment)",
	}
}

// perExperiment reports whether the named identity is minted anew for every experiment.
func perExperiment(t *target.Target, name string) bool {
	id := t.Identities[name]
	return id != nil && id.PerExperiment
}

// opByEndpoint returns the surface's operation "METHOD /path", or nil.
func opByEndpoint(s *target.Surface, endpoint string) *target.Op {
	for _, o := range s.Ops {
		if o.Endpoint() == endpoint {
			return o
		}
	}
	return nil
}

func canRevoke(_ *target.Target, _ string, id *identity.Identity) string {
	switch {
	case id.Revoke == nil:
		return "no revoke hook"
	case !id.Source.Fresh():
		return fmt.Sprintf("a %s token, which revoking would spend", id.Source.Kind())
	}
	return ""
}

// Choose fills in, from t.Surface, the probes of every check that names none; with no checks in the
// config, it adds every check that fits some operation, in the order of All. It records each choice on
// its operation and, per check, why none fitted. It does nothing without a surface, or the second
// time. The error says that nothing at all could be tested.
func Choose(t *target.Target) error {
	s := t.Surface
	if s == nil || s.Chosen() {
		return nil
	}
	ids := t.CheckOrder
	if s.Auto {
		ids = IDs()
	}
	var order []string
	for _, id := range ids {
		plan := t.Checks[id]
		sel, ok := selectors[id]
		switch {
		case s.Auto && !ok:
			s.Unselected[id] = "runs only from probes written for it under checks"
			continue
		}
		if !ok || len(plan.Probes) > 0 {
			order = append(order, id)
			continue
		}
		plan, why := choose(t, id, sel, plan)
		if len(plan.Probes) == 0 {
			s.Unselected[id] = why
			if !s.Auto {
				order = append(order, id) // listed: reported as skipped, with why
			}
			continue
		}
		t.Checks[id] = plan
		order = append(order, id)
	}
	t.CheckOrder = order
	// Probes the config names for a check test their operations too.
	for _, id := range order {
		for _, op := range s.Ops {
			named := slices.Contains(t.Checks[id].Probes, op.Probe) && op.Probe != ""
			if named && !slices.ContainsFunc(op.Uses, func(u target.Use) bool { return u.Check == id }) {
				op.Uses = append(op.Uses, target.Use{Check: id, Why: fmt.Sprintf("its probe %s is named in checks.%s.probes", op.Probe, id)})
			}
		}
	}
	if len(order) == 0 {
		var why []string
		for _, id := range ids {
			why = append(why, id+": "+s.Unselected[id])
		}
		return errors.New("no check fits the API's operations: " + strings.Join(why, "; "))
	}
	return nil
}

// choose picks one check's identity, verifier and probes.
func choose(t *target.Target, checkID string, sel selector, plan target.Plan) (target.Plan, string) {
	s := t.Surface
	candidates := s.IdentityOrder
	if plan.Identity != "" {
		candidates = []string{plan.Identity}
	}
	owner := ""
	if sel.pair != nil {
		owner = plan.Owner
		if owner == "" && len(s.IdentityOrder) > 0 {
			owner = s.IdentityOrder[0]
		}
		candidates = slices.DeleteFunc(slices.Clone(candidates), func(n string) bool { return n == owner })
		if owner == "" || len(candidates) == 0 {
			return plan, "it needs two identities: an owner and another to test"
		}
	}
	if sel.perOp && sel.pair == nil {
		return choosePerOp(t, checkID, sel, plan, candidates)
	}
	if sel.perExperimentFirst {
		candidates = slices.Clone(candidates)
		slices.SortStableFunc(candidates, func(a, b string) int {
			return cmpBool(!perExperiment(t, a), !perExperiment(t, b))
		})
	}
	usable, lacks := usableIdentities(t, sel, candidates)
	for _, name := range usable {
		out := target.Plan{Identity: name, Verifier: plan.Verifier, Owner: owner}
		var uses []func()
		for _, op := range s.Ops {
			if op.Probe == "" || t.Probes[op.Probe] == nil {
				continue
			}
			var why string
			if sel.pair != nil {
				why = sel.pair(t, owner, name, op)
			} else {
				why = sel.fits(t, name, op)
			}
			if why == "" {
				continue
			}
			if checkID == config.CheckInflightRevocation && plan.Verifier == "" {
				v := verifierFor(t, name, op)
				if v == "" {
					continue
				}
				if out.Verifier != "" && out.Verifier != v {
					continue // one verifier per check: the first operation's
				}
				out.Verifier = v
				why += ", read back as " + v
			}
			if slices.Contains(out.Probes, op.Probe) {
				continue
			}
			out.Probes = append(out.Probes, op.Probe)
			op := op
			why = fmt.Sprintf("as %s: %s", name, why)
			uses = append(uses, func() {
				op.Uses = append(op.Uses, target.Use{Check: checkID, Why: why})
				if checkID == config.CheckBFLA {
					t.Probes[op.Probe].Privileged = true // what the document's scopes say of it
				}
			})
		}
		if len(out.Probes) > 0 {
			for _, use := range uses {
				use()
			}
			return out, ""
		}
		lacks = append(lacks, name+": "+sel.none)
	}
	if len(lacks) == 0 {
		return plan, "no identity"
	}
	if !slices.ContainsFunc(lacks, func(l string) bool { return !strings.HasSuffix(l, ": "+sel.none) }) {
		return plan, sel.none // the same for every identity
	}
	return plan, strings.Join(lacks, "; ")
}

// usableIdentities splits candidates into those that have what the check needs, in order, and why
// each other one does not ("name: why").
func usableIdentities(t *target.Target, sel selector, candidates []string) (usable, lacks []string) {
	for _, name := range candidates {
		id := t.Identities[name]
		if id == nil {
			continue
		}
		if why := sel.identity(t, name, id); why != "" {
			lacks = append(lacks, name+": "+why)
			continue
		}
		usable = append(usable, name)
	}
	return usable, lacks
}

// choosePerOp picks, for each operation, the first candidate identity that has what the check
// needs and fits it (identities with a known scheme first), and as its second identity the check's verifier, else the first other
// identity that may do the operation with the same scheme (a forgery claiming its subject shows
// impersonation). With sel.oneEach, each identity gets one operation, one without a setup first.
func choosePerOp(t *target.Target, checkID string, sel selector, plan target.Plan, candidates []string) (target.Plan, string) {
	s := t.Surface
	ops := s.Ops
	if sel.oneEach {
		ops = slices.Clone(ops)
		slices.SortStableFunc(ops, func(a, b *target.Op) int { return cmpBool(hasSetup(t, a), hasSetup(t, b)) })
	}
	out := target.Plan{Verifier: plan.Verifier, PerProbe: map[string]target.ProbePlan{}}
	ready, lacks := usableIdentities(t, sel, candidates)
	usable := map[string]bool{}
	for _, name := range ready {
		usable[name] = true
	}
	// An identity declared for (or inferred to answer) a scheme is the best fit for that scheme's
	// operations; one whose scheme is unknown may answer anything, so it comes after, and one
	// minted per experiment (an account per request) last.
	candidates = slices.Clone(candidates)
	slices.SortStableFunc(candidates, func(a, b string) int {
		if c := cmpBool(s.Schemes[a] == "", s.Schemes[b] == ""); c != 0 {
			return c
		}
		return cmpBool(perExperiment(t, a), perExperiment(t, b))
	})
	// With oneEach, one operation per issuer: per scheme where the identity's is known, else per
	// identity. An operation whose first fitting identity's issuer was tested already is left.
	took := map[string]bool{}
	issuer := func(name string) string {
		if sc := s.Schemes[name]; sc != "" {
			return "scheme " + sc
		}
		return "identity " + name
	}
	for _, op := range ops {
		if op.Probe == "" || t.Probes[op.Probe] == nil {
			continue
		}
		if _, done := out.PerProbe[op.Probe]; done {
			continue
		}
		for _, name := range candidates {
			if !usable[name] {
				continue
			}
			why := sel.fits(t, name, op)
			if why == "" {
				continue
			}
			if sel.oneEach && took[issuer(name)] {
				break
			}
			took[issuer(name)] = true
			verifier := plan.Verifier
			if verifier == "" {
				verifier = sameScheme(t, name, op)
			}
			if len(out.Probes) == 0 {
				out.Identity, out.Verifier = name, verifier
			}
			out.Probes = append(out.Probes, op.Probe)
			out.PerProbe[op.Probe] = target.ProbePlan{Identity: name, Verifier: verifier}
			why = fmt.Sprintf("as %s: %s", name, why)
			if verifier != "" && verifier != plan.Verifier {
				why += fmt.Sprintf(" (%s, with the same scheme, is the other subject)", verifier)
			}
			op.Uses = append(op.Uses, target.Use{Check: checkID, Why: why})
			break
		}
	}
	if len(out.Probes) > 0 {
		return out, ""
	}
	if len(lacks) > 0 && len(usable) == 0 {
		return plan, strings.Join(lacks, "; ")
	}
	return plan, sel.none
}

// sameScheme returns the first identity other than name, not minted per experiment, that may do
// op and answers the same security scheme as name (or whose scheme, like name's, is unknown);
// "" when there is none.
func sameScheme(t *target.Target, name string, op *target.Op) string {
	s := t.Surface
	for _, other := range s.IdentityOrder {
		if other == name || perExperiment(t, other) || s.Schemes[other] != s.Schemes[name] || !covers(s, other, op.Operation) {
			continue
		}
		return other
	}
	return ""
}

// recorded reports whether op's security was only seen in traffic (a HAR file): a request that
// carried a token does not say the operation needs one, so auth/missing cannot claim it does.
func recorded(op *surface.Operation) bool {
	return slices.ContainsFunc(op.Security, func(r surface.Requirement) bool {
		return slices.ContainsFunc(r, func(s surface.SchemeScopes) bool { return s.Scheme == surface.HARScheme })
	})
}

func hasSetup(t *target.Target, op *target.Op) bool {
	p := t.Probes[op.Probe]
	return p != nil && len(p.Setup) > 0
}

// cmpBool orders false before true.
func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// verifierFor returns who reads back what op's probe removes: anonymous when that read is public,
// else the first identity other than the one under test that may read it; "" when none may.
func verifierFor(t *target.Target, name string, op *target.Op) string {
	p := t.Probes[op.Probe]
	read := p.Verify[len(p.Verify)-1]
	var readOp *target.Op
	for _, o := range t.Surface.Ops {
		if o.Method == read.Method && surface.NormalizePath(o.Path) == surface.NormalizePath(target.StripOrigin(read.Path)) {
			readOp = o
			break
		}
	}
	if readOp != nil && readOp.Public() {
		return probe.Anonymous
	}
	for _, other := range t.Surface.IdentityOrder {
		if other != name && (readOp == nil || covers(t.Surface, other, readOp.Operation)) {
			return other
		}
	}
	return ""
}

// covers reports whether identity name may do op: some alternative's scopes are all among the
// scopes its oauth2 source asks for. An identity whose scopes are unknown may do anything.
func covers(s *target.Surface, name string, op *surface.Operation) bool {
	have, known := s.Scopes[name]
	scheme := s.Schemes[name]
	if !known && scheme == "" || op.Public() {
		return true
	}
	for _, req := range op.Security {
		if scheme != "" && (len(req) == 0 || slices.ContainsFunc(req, func(r surface.SchemeScopes) bool { return r.Scheme != scheme })) {
			continue // this alternative needs another scheme's credential
		}
		if !known || !slices.ContainsFunc(req.Scopes(), func(sc string) bool { return !slices.Contains(have, sc) }) {
			return true
		}
	}
	return false
}

// needs says what an operation's security asks for: its scopes, or "a token".
func needs(op *surface.Operation) string {
	var alts []string
	for _, req := range op.Security {
		if sc := req.Scopes(); len(sc) > 0 {
			alts = append(alts, strings.Join(sc, " and "))
		}
	}
	if len(alts) == 0 {
		return "a token"
	}
	return strings.Join(alts, " or ")
}
