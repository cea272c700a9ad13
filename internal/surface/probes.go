package surface

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/tocsin/tocsin/internal/config"
)

// Policy is what the config allows and already says about operations.
type Policy struct {
	// Destructive reports whether the config allows a write operation (as a probe, or as a step
	// that creates or removes what a probe acts on). Reads are always allowed.
	Destructive func(op *Operation) bool
	// SingleUse reports whether the config marks the operation as a one-shot action.
	SingleUse func(op *Operation) bool
	// Vars are the config's variables: a parameter named like one takes its value.
	Vars map[string]string
	// HandWritten returns the name of a probe written in the config for the same method and path,
	// or "": that probe wins.
	HandWritten func(method, path string) string
	// Taken reports whether a probe name is in use already.
	Taken func(name string) bool
}

// Generated is what became of one operation.
type Generated struct {
	Op *Operation
	// Probe is the probe made from the operation, or nil.
	Probe *config.Probe
	// HandWritten names the config's own probe for this operation, when it has one.
	HandWritten string
	// How says where the probe's values come from (its setup, verify and teardown), for reports.
	How string
	// Reason says why no probe was made (a write not allowed, a value with no source).
	Reason string
	// Creates is the operation whose setup step creates the object the probe acts on ("METHOD
	// /path"; empty when nothing is created): the object is the identity's that ran the setup.
	Creates string
	// OnIdentity says the probe writes to the calling identity itself (PATCH /account): only an
	// identity minted per experiment may send it, so that what it changes goes with the account.
	OnIdentity bool
}

// Probes makes a probe of each operation that can be sent as it stands: every required parameter
// has a value, a write is allowed, and what a setup creates can be removed again. Values come, in
// this order, from a config variable of the parameter's name, a setup chain (an OpenAPI link from
// another operation, or the POST on the collection that creates the resource, or the list the GET on
// the collection returns), and the spec's example. A DELETE with a GET on the same path reads the
// resource back with that GET (verify), and what a setup created is removed by the DELETE of it
// (teardown).
func Probes(d *Document, pol Policy) []Generated {
	g := &generator{d: d, pol: pol, names: map[string]bool{}, byPath: map[string][]*Operation{}, linksTo: map[string][]sourceLink{}}
	for _, op := range d.Operations {
		key := NormalizePath(op.Path)
		g.byPath[key] = append(g.byPath[key], op)
		for _, l := range op.Links {
			if l.Unsupported == "" {
				g.linksTo[l.Target] = append(g.linksTo[l.Target], sourceLink{src: op, link: l})
			}
		}
	}
	out := make([]Generated, 0, len(d.Operations))
	for _, op := range d.Operations {
		out = append(out, g.generate(op))
	}
	return out
}

type generator struct {
	d     *Document
	pol   Policy
	names map[string]bool
	// byPath indexes operations by normalized path, linksTo the links by target: a HAR file of
	// thousands of requests must not cost their square.
	byPath  map[string][]*Operation
	linksTo map[string][]sourceLink
}

type sourceLink struct {
	src  *Operation
	link Link
}

// onPath returns the operations with method on path (a template, any parameter names).
func (g *generator) onPath(method, path string) []*Operation {
	var out []*Operation
	for _, op := range g.byPath[NormalizePath(path)] {
		if op.Method == method {
			out = append(out, op)
		}
	}
	return out
}

func (g *generator) allowed(op *Operation) bool {
	return op.Read() || g.pol.Destructive != nil && g.pol.Destructive(op)
}

func (g *generator) generate(op *Operation) Generated {
	out := Generated{Op: op}
	if g.pol.HandWritten != nil {
		if name := g.pol.HandWritten(op.Method, op.Path); name != "" {
			out.HandWritten = name
			return out
		}
	}
	if !g.allowed(op) {
		out.Reason = fmt.Sprintf("a write (%s), not allowed by destructive", op.Method)
		return out
	}
	b := &chainBuilder{g: g, op: op, known: map[string]bool{}, refused: map[string]string{}}
	main, err := b.request(op, true, "")
	if err != nil {
		out.Reason = err.Error()
		return out
	}
	if !op.Read() && !b.creates {
		if !g.onIdentity(op) {
			out.Reason = fmt.Sprintf("a write (%s) on nothing the scan created: tocsin changes only what it creates (it may still serve as the setup that creates what other operations act on)", op.Method)
			return out
		}
		out.OnIdentity = true
		b.how = append(b.how, "acts on the calling identity itself: sent only as an identity minted per experiment")
	}
	p := main
	p.Name = g.name(op)
	p.Destructive = !op.Read()
	p.Setup = b.setup
	if b.creates {
		out.Creates = b.creator.Endpoint()
		if list := b.lister(); list != nil {
			if step, err := b.plainStep(list, ""); err == nil {
				step.Accept = list.SuccessStatuses()
				p.List = step
				b.how = append(b.how, "list: "+list.Endpoint())
			}
		}
	}
	if !op.Read() && p.Body != "" && len(op.ReadOnly) > 0 {
		p.Assign = assignReadOnly(op.ReadOnly)
	}
	if op.Method == "DELETE" || op.Method == "PUT" || op.Method == "PATCH" {
		if read := g.sameResource(op, "GET"); read != nil {
			verify, err := b.plainStep(read, p.Path)
			if err == nil {
				verify.Accept = read.SuccessStatuses()
				if len(verify.Accept) == 0 {
					verify.Accept = []int{200}
				}
				verify.Reject = []int{404, 410}
				p.Verify = []*config.Probe{verify}
				b.how = append(b.how, "verify: "+read.Endpoint())
			}
		}
	}
	if b.creates {
		if len(b.creators) > 1 {
			// The scan removes what one setup made with one teardown chain, which stops at its
			// first failure, and takes it all for gone when the probe's object is: a parent
			// created first could be left behind.
			out.Reason = fmt.Sprintf("its setup creates more than one resource (%s): tocsin removes one resource per setup and could leave the others behind (hint: define a var for the parameter the first one gives, naming one that exists, so that the setup creates only what the probe acts on)", strings.Join(b.creators, ", then "))
			return out
		}
		// The DELETE of what the setup created, which is not the probe's own DELETE when the probe
		// acts on another resource than the one its setup creates.
		del := b.g.remover(b.creator)
		if del == nil || b.created == "" {
			out.Reason = fmt.Sprintf("its setup creates a resource (%s) that no allowed DELETE removes: tocsin would leave it behind (hint: allow the DELETE of that resource under destructive)", b.creator.Endpoint())
			return out
		}
		if len(p.Verify) > 0 {
			if at, _, _ := strings.Cut(p.Verify[0].Path, "?"); at != b.resourcePath() {
				// Seeing the verify's object gone, a check takes what the setup created for removed
				// and skips its teardown.
				out.Reason = fmt.Sprintf("it removes another resource than the one its setup creates (%s): a check that saw it gone would take that one for removed too, and leave it behind", b.creator.Endpoint())
				return out
			}
		}
		td, err := b.plainStep(del, b.resourcePath())
		if err != nil {
			out.Reason = err.Error()
			return out
		}
		td.Accept = del.SuccessStatuses()
		p.Teardown = []*config.Probe{td}
		b.how = append(b.how, "teardown: "+del.Endpoint())
	}
	g.names[p.Name] = true
	out.Probe = p
	out.How = strings.Join(b.how, "; ")
	return out
}

// onIdentity reports whether op is an update of the calling identity itself: a PUT or PATCH that
// needs a token, on a path without parameters that a GET reads back (PATCH /account, PUT /me).
func (g *generator) onIdentity(op *Operation) bool {
	return (op.Method == "PUT" || op.Method == "PATCH") && !op.Public() && len(PathParams(op.Path)) == 0 && g.sameResource(op, "GET") != nil
}

// assignReadOnly gives each readOnly property a value to try setting it to, as JSON: one a server
// would not pick by itself for a string, a number or a boolean; other types are left out.
func assignReadOnly(props map[string]string) map[string]string {
	out := map[string]string{}
	for name, typ := range props {
		switch typ {
		case "string":
			out[name] = `"tocsin-assigned"`
		case "integer", "number":
			out[name] = "1000000"
		case "boolean":
			out[name] = "true"
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// chainBuilder assembles one probe's setup steps while its parameters are resolved.
type chainBuilder struct {
	g       *generator
	op      *Operation
	setup   []*config.Probe
	known   map[string]bool // variables the setup extracts
	how     []string
	creates bool       // a setup step creates a resource
	creator *Operation // the operation that creates it (the last, when several do)
	created string     // the variable naming what it created
	// creators are the endpoints of every setup step that creates, in order.
	creators []string
	// creatorPath is the creating step's path (its parameters filled, no query): the collection
	// that what it created is removed from.
	creatorPath string
	// refused says, by path parameter, why a link that gives its value could not be followed.
	refused map[string]string
}

// request makes the request of op. withChains lets path parameters come from setup steps (the
// probe itself); a step's own parameters come from variables and examples only. A non-empty at is
// the path to send op to, its parameters filled already.
func (b *chainBuilder) request(op *Operation, withChains bool, at string) (*config.Probe, error) {
	p := &config.Probe{Method: op.Method, Headers: map[string]string{}}
	for k, v := range op.Headers {
		p.Headers[k] = v
	}
	path := at
	if path == "" {
		path = op.Path
		for _, name := range PathParams(op.Path) {
			value, err := b.pathValue(op, name, withChains)
			if err != nil {
				return nil, err
			}
			path = strings.Replace(path, "{"+name+"}", value, 1)
		}
	}
	query := url.Values{}
	if op.Query != "" {
		if q, err := url.ParseQuery(op.Query); err == nil {
			query = q
		}
	}
	for _, prm := range op.Params {
		if prm.In != "query" && prm.In != "header" || !prm.Required {
			continue
		}
		value, ok := "", false
		if _, isVar := b.g.pol.Vars[prm.Name]; isVar {
			value, ok = "{{"+prm.Name+"}}", true
		} else if prm.HasExample {
			value, ok = prm.Example, true
		}
		if !ok {
			return nil, fmt.Errorf("no value for the required %s parameter %s of %s (hint: give it an example in the spec, or define vars.%s)", prm.In, prm.Name, op.Endpoint(), prm.Name)
		}
		if prm.In == "query" {
			query.Set(prm.Name, value)
		} else {
			p.Headers[prm.Name] = value
		}
	}
	if err := b.credential(op, p, query); err != nil {
		return nil, err
	}
	if len(query) > 0 {
		// Encode leaves {{ }} escaped; the template needs them as they are.
		path += "?" + strings.NewReplacer("%7B%7B", "{{", "%7D%7D", "}}").Replace(query.Encode())
	}
	p.Path = path
	if op.Body != nil {
		switch {
		case op.Body.HasExample && strings.Contains(strings.ReplaceAll(op.Body.Example, "tocsin-{{uuid}}", ""), "{{"):
			return nil, fmt.Errorf("the request body example of %s holds {{, which tocsin would read as a template", op.Endpoint())
		case op.Body.HasExample:
			p.Body = op.Body.Example
			if op.Body.ContentType != "" && !hasHeader(p.Headers, "Content-Type") {
				p.Headers["Content-Type"] = op.Body.ContentType
			}
		case op.Body.Required:
			return nil, fmt.Errorf("no request body for %s: the spec has no example and its schema gives none (hint: add an example to the request body)", op.Endpoint())
		}
	}
	p.Accept = op.SuccessStatuses()
	p.Reject = []int{401, 403}
	if b.g.pol.SingleUse != nil && b.g.pol.SingleUse(op) {
		// "Already used" answers (409, 410, 422) refuse the action as surely as 401 and 403.
		for _, s := range op.statuses(4) {
			if !slices.Contains([]int{400, 401, 403, 404, 429}, s) {
				p.Reject = append(p.Reject, s)
			}
		}
	}
	if len(p.Headers) == 0 {
		p.Headers = nil
	}
	return p, nil
}

// credential places the token as the operation's security asks: an apiKey in its header, query
// parameter or cookie; anything bearer-like in the Authorization header (the default).
func (b *chainBuilder) credential(op *Operation, p *config.Probe, query url.Values) error {
	if op.Public() {
		return nil
	}
	var basicOnly bool
	for _, req := range op.Security {
		for _, ss := range req {
			s := b.g.d.Scheme(ss.Scheme)
			switch {
			case s == nil, s.Type == "oauth2", s.Type == "openIdConnect", s.Type == "http" && s.HTTPScheme == "bearer":
				return nil
			case s.Type == "apiKey" && s.In == "header":
				p.Headers[s.Param] = "{{token}}"
				return nil
			case s.Type == "apiKey" && s.In == "query":
				query.Set(s.Param, "{{token}}")
				return nil
			case s.Type == "apiKey" && s.In == "cookie":
				p.Headers["Cookie"] = s.Param + "={{token}}"
				return nil
			case s.Type == "http":
				basicOnly = true
			}
		}
	}
	if basicOnly {
		return fmt.Errorf("%s authenticates with HTTP %s, not a bearer token", op.Endpoint(), b.g.d.Scheme(op.Security[0][0].Scheme).HTTPScheme)
	}
	return nil
}

func hasHeader(h map[string]string, name string) bool {
	for k := range h {
		if strings.EqualFold(k, name) {
			return true
		}
	}
	return false
}

// pathValue returns what replaces {name} in op's path: a {{variable}}, or a path-escaped example.
func (b *chainBuilder) pathValue(op *Operation, name string, withChains bool) (string, error) {
	v := varName(name)
	if _, isVar := b.g.pol.Vars[name]; isVar {
		return "{{" + name + "}}", nil
	}
	if b.known[v] {
		return "{{" + v + "}}", nil
	}
	if withChains {
		if b.fromLink(op, name, v) || b.fromCreate(op, name, v) || b.fromList(op, name, v) {
			return "{{" + v + "}}", nil
		}
	}
	for _, prm := range op.Params {
		if prm.Name == name && prm.In == "path" && prm.HasExample {
			return url.PathEscape(prm.Example), nil
		}
	}
	if why := b.refused[name]; why != "" {
		return "", fmt.Errorf("no value for the path parameter {%s} of %s: %s; no example, no vars.%s, and no other create or list gives one (hint: document the id of what the create makes in its response, or define vars.%s)", name, op.Endpoint(), why, name, name)
	}
	return "", fmt.Errorf("no value for the path parameter {%s} of %s: no example in the spec, no vars.%s, no link or create operation that makes one, and no list to pick one from (hint: define vars.%s, or allow the create under destructive)", name, op.Endpoint(), name, name)
}

// fromLink adds a setup step from an OpenAPI link (or a recorded one) that gives {name}.
func (b *chainBuilder) fromLink(op *Operation, name, v string) bool {
	for _, sl := range b.g.linksTo[op.ID] {
		src, l := sl.src, sl.link
		sel, ok := l.Params[name]
		if !ok || src == op || !b.g.allowed(src) {
			continue
		}
		extract, created, note := map[string]string{v: sel}, v, ""
		if !src.Read() && !samePath(collection(op.Path, name), src.Path) {
			// {name} is not an element of what src creates: the link's value names something else
			// (an invoice the order came with), and the teardown needs the created one's own id.
			ownVar, field, why := b.ownID(src, v)
			if why != "" {
				b.refused[name] = fmt.Sprintf("link %s from %s gives it, but the teardown could not be derived: %s", l.Name, src.Endpoint(), why)
				continue
			}
			if ownSel := selectorOf(field); field != "" && ownSel != sel {
				extract[ownVar], created = ownSel, ownVar
				note = fmt.Sprintf(", not the id of what it creates: its response's %s is, for the teardown", field)
			}
		}
		if b.addStep(src, extract, created) {
			b.how = append(b.how, fmt.Sprintf("setup: %s (link %s gives {%s}%s)", src.Endpoint(), l.Name, name, note))
			return true
		}
	}
	return false
}

// ownID finds how to name what src creates when a link from it gives something else: the field of
// its response named like the last parameter of the DELETE that removes it, else id, and a
// variable for it that v and what is known already do not take. With no such DELETE it returns
// nothing and no reason: the probe is refused for that, as any create nothing removes. why says
// why the id cannot be told.
func (b *chainBuilder) ownID(src *Operation, v string) (ownVar, field, why string) {
	del := b.g.remover(src)
	if del == nil {
		return "", "", ""
	}
	params := PathParams(del.Path)
	last := params[len(params)-1]
	if r := src.success(); r != nil {
		field = idField(r.Fields, last)
	}
	if field == "" {
		return "", "", fmt.Sprintf("its value is not the id of what %s creates, and that response documents no %s or id field to delete it by with %s", src.Endpoint(), last, del.Endpoint())
	}
	base := varName(last)
	taken := func(name string) bool {
		_, isVar := b.g.pol.Vars[name]
		return name == v || b.known[name] || isVar
	}
	ownVar = base
	for n := 1; taken(ownVar); n++ {
		ownVar = "created_" + base
		if n > 1 {
			ownVar = fmt.Sprintf("created%d_%s", n, base)
		}
	}
	return ownVar, field, ""
}

// fromCreate adds the POST on the collection that holds {name}, when its response names the field.
func (b *chainBuilder) fromCreate(op *Operation, name, v string) bool {
	coll := collection(op.Path, name)
	if coll == "" {
		return false
	}
	for _, src := range b.g.onPath("POST", coll) {
		if !b.g.allowed(src) {
			continue
		}
		if r := src.success(); r != nil {
			if field := idField(r.Fields, name); field != "" && b.addStep(src, map[string]string{v: selectorOf(field)}, v) {
				b.how = append(b.how, fmt.Sprintf("setup: %s (creates it; {%s} from %s)", src.Endpoint(), name, field))
				return true
			}
		}
	}
	return false
}

// fromList adds the GET on the collection, taking {name} from the first item it lists.
func (b *chainBuilder) fromList(op *Operation, name, v string) bool {
	coll := collection(op.Path, name)
	if coll == "" {
		return false
	}
	for _, src := range b.g.onPath("GET", coll) {
		r := src.success()
		if r == nil || !r.List {
			continue
		}
		field := idField(r.ListFields, name)
		if field == "" {
			continue
		}
		sel := "0." + selectorOf(field)
		if r.ListPath != "" {
			sel = selectorOf(r.ListPath) + "." + sel
		}
		if b.addStep(src, map[string]string{v: sel}, "") {
			b.how = append(b.how, fmt.Sprintf("setup: %s (the first item it lists gives {%s})", src.Endpoint(), name))
			return true
		}
	}
	return false
}

// addStep appends src as a setup step that extracts the variables of extract with their selectors;
// false when src's own request cannot be made. created is the variable that names what src
// creates, when it writes: the teardown removes that.
func (b *chainBuilder) addStep(src *Operation, extract map[string]string, created string) bool {
	step, err := b.request(src, false, "")
	if err != nil {
		return false
	}
	step.Accept = src.SuccessStatuses()
	step.Reject = nil
	step.Extract = extract
	b.setup = append(b.setup, step)
	for v := range extract {
		b.known[v] = true
	}
	if !src.Read() {
		b.creates, b.creator, b.created = true, src, created
		b.creators = append(b.creators, src.Endpoint())
		b.creatorPath, _, _ = strings.Cut(step.Path, "?")
	}
	return true
}

// plainStep makes a step of op on path, a path with its parameters filled (the probe's, or that
// of what the setup created).
func (b *chainBuilder) plainStep(op *Operation, path string) (*config.Probe, error) {
	step, err := b.request(op, false, path)
	if err != nil {
		return nil, err
	}
	step.Reject = nil
	step.Body = ""
	if step.Method == "GET" || step.Method == "DELETE" {
		delete(step.Headers, "Content-Type")
	}
	return step, nil
}

// lister finds the GET on the collection whose POST created the object, when it answers with a
// list: what an identity may see of that kind (authz/bola leaves out what the identity lists).
func (b *chainBuilder) lister() *Operation {
	for _, op := range b.g.onPath("GET", b.creator.Path) {
		if r := op.success(); r != nil && r.List && len(PathParams(op.Path)) == 0 {
			return op
		}
	}
	return nil
}

// remover finds the allowed DELETE of what creator creates: on the creating collection's path
// followed by one parameter.
func (g *generator) remover(creator *Operation) *Operation {
	for _, op := range g.d.Operations {
		if op.Method != "DELETE" || !g.allowed(op) {
			continue
		}
		params := PathParams(op.Path)
		if len(params) > 0 && samePath(collection(op.Path, params[len(params)-1]), creator.Path) && strings.HasSuffix(op.Path, "{"+params[len(params)-1]+"}") {
			return op
		}
	}
	return nil
}

// resourcePath is the path of what the setup created: the collection it was created in (the
// creating step's path, with the values that step was sent with), then the variable naming it.
func (b *chainBuilder) resourcePath() string {
	return strings.TrimSuffix(b.creatorPath, "/") + "/{{" + b.created + "}}"
}

// sameResource returns the operation with method on op's path template, or nil.
func (g *generator) sameResource(op *Operation, method string) *Operation {
	if ops := g.onPath(method, op.Path); len(ops) > 0 {
		return ops[0]
	}
	return nil
}

// collection returns the part of path before the segment {name}: /users/{uid}/items for
// /users/{uid}/items/{id}/archive and id; "" when {name} is not in path.
func collection(path, name string) string {
	i := strings.Index(path, "/{"+name+"}")
	if i <= 0 {
		return ""
	}
	return path[:i]
}

var paramPattern = regexp.MustCompile(`\{[^}]*\}`)

// samePath compares path templates whatever their parameters are named ({id}, {{item_id}}).
func samePath(a, b string) bool { return NormalizePath(a) == NormalizePath(b) }

// NormalizePath writes every parameter of a path template ({id}, {{item_id}}) as {}, and drops the
// query, so that a spec's path and a hand-written probe's can be compared.
func NormalizePath(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	p = strings.ReplaceAll(p, "{{", "{")
	p = strings.ReplaceAll(p, "}}", "}")
	return strings.TrimSuffix(paramPattern.ReplaceAllString(p, "{}"), "/")
}

// idField picks the field naming a created or listed resource: the parameter's own name, else id.
func idField(fields []string, param string) string {
	for _, f := range fields {
		if f == param {
			return f
		}
	}
	for _, f := range fields {
		if f == "id" {
			return f
		}
	}
	return ""
}

func selectorOf(field string) string {
	sel, _ := pointerSelector("/" + field)
	return sel
}

// reservedVars cannot name a parameter's variable: the token and the unique values.
var reservedVars = []string{"token", "uuid", "random", "seq"}

// varName is the template variable a path parameter's value is kept in.
func varName(param string) string {
	var b strings.Builder
	for _, c := range param {
		if c == '_' || c == '-' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			b.WriteRune(c)
		} else {
			b.WriteByte('_')
		}
	}
	v := b.String()
	if v == "" || slices.Contains(reservedVars, v) || strings.HasPrefix(v, "token.") {
		v = "param_" + v
	}
	return v
}

// name returns the probe's name: the operationId, else the method and path in words
// (get-items-id), made unique.
func (g *generator) name(op *Operation) string {
	base := op.ID
	if base == op.Endpoint() || strings.HasPrefix(base, op.Endpoint()+"?") || base == "" {
		var words []string
		for _, w := range strings.FieldsFunc(strings.ToLower(op.Method+" "+op.Path), func(c rune) bool {
			return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9')
		}) {
			words = append(words, w)
		}
		base = strings.Join(words, "-")
	}
	name := base
	for n := 2; g.names[name] || g.pol.Taken != nil && g.pol.Taken(name); n++ {
		name = fmt.Sprintf("%s-%d", base, n)
	}
	return name
}
