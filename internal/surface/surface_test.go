package surface_test

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/surface"
)

func read(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func allow(names ...string) surface.Policy {
	return surface.Policy{Destructive: func(op *surface.Operation) bool { return slices.Contains(names, op.ID) }}
}

func generated(t *testing.T, gen []surface.Generated, id string) surface.Generated {
	t.Helper()
	for _, g := range gen {
		if g.Op.ID == id {
			return g
		}
	}
	t.Fatalf("no operation %s", id)
	return surface.Generated{}
}

// A Swagger 2.0 document is converted: base path, security with scopes, an apiKey scheme, path-item
// parameters, defaults as values and the body schema.
func TestSwagger2(t *testing.T) {
	d, err := surface.ParseOpenAPI(read(t, "petstore-swagger2.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(d.Source, "Swagger 2.0") || len(d.Servers) != 1 || d.Servers[0] != "https://pets.example/v2" {
		t.Errorf("source %q, servers %v", d.Source, d.Servers)
	}
	var ids []string
	for _, op := range d.Operations {
		ids = append(ids, op.Endpoint())
	}
	want := []string{"GET /v2/pets", "POST /v2/pets", "GET /v2/pets/{petId}", "DELETE /v2/pets/{petId}", "GET /v2/stats", "GET /v2/status"}
	if !slices.Equal(ids, want) {
		t.Fatalf("operations %v, want %v", ids, want)
	}
	get := d.Operation("getPet")
	if get.Public() || !slices.Equal(get.Security[0].Scopes(), []string{"pets:read"}) {
		t.Errorf("getPet security %+v: want the global pets:read", get.Security)
	}
	if !d.Operation("status").Public() {
		t.Error("status declares security: [] and is public")
	}
	if s := d.Scheme("petauth"); s == nil || s.Type != "oauth2" || len(s.Flows) != 1 || s.Flows[0].Grant != "password" || s.Flows[0].TokenURL != "https://pets.example/oauth/token" {
		t.Errorf("petauth scheme %+v", s)
	}
	if d.Operation("POST /v2/pets") != d.Operation("addPet") {
		t.Error("an operation is found by its endpoint as by its id")
	}
}

// Probes follow the chains the document implies: the create on the collection gives a GET or DELETE
// of one element its id and is undone by the DELETE; without writes allowed, the list gives the id.
func TestProbesFromOperations(t *testing.T) {
	d, err := surface.ParseOpenAPI(read(t, "petstore-swagger2.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	gen := surface.Probes(d, allow("addPet", "deletePet"))
	get := generated(t, gen, "getPet").Probe
	if get == nil || get.Path != "/v2/pets/{{petId}}" || len(get.Setup) != 1 || get.Setup[0].Path != "/v2/pets" || get.Setup[0].Method != "POST" ||
		get.Setup[0].Extract["petId"] != "petId" || get.Setup[0].Body != `{"name":"tocsin-{{uuid}}"}` {
		t.Fatalf("getPet probe %+v (setup %+v)", get, get.Setup)
	}
	if len(get.Teardown) != 1 || get.Teardown[0].Method != "DELETE" || get.Teardown[0].Path != "/v2/pets/{{petId}}" {
		t.Errorf("getPet teardown %+v: want the DELETE of what its setup created", get.Teardown)
	}
	del := generated(t, gen, "deletePet").Probe
	if del == nil || !del.Destructive || len(del.Setup) != 1 || len(del.Verify) != 1 || del.Verify[0].Path != "/v2/pets/{{petId}}" ||
		!slices.Equal(del.Verify[0].Reject, []int{404, 410}) || !slices.Equal(del.Accept, []int{204}) {
		t.Fatalf("deletePet probe %+v", del)
	}
	stats := generated(t, gen, "stats").Probe
	if stats == nil || stats.Headers["X-API-Key"] != "{{token}}" || stats.Path != "/v2/stats?day=today" {
		t.Errorf("stats probe %+v: want the apiKey header and the default as the query value", stats)
	}
	if g := generated(t, gen, "addPet"); g.Probe != nil || !strings.Contains(g.Reason, "nothing the scan created") {
		t.Errorf("addPet: %+v, want no probe: a create acts on nothing tocsin made", g)
	}

	gen = surface.Probes(d, surface.Policy{})
	get = generated(t, gen, "getPet").Probe
	if get == nil || len(get.Setup) != 1 || get.Setup[0].Method != "GET" || get.Setup[0].Extract["petId"] != "pets.0.petId" || len(get.Teardown) != 0 {
		t.Fatalf("getPet without writes: %+v, want the list as setup", get)
	}
	if g := generated(t, gen, "deletePet"); g.Probe != nil || !strings.Contains(g.Reason, "not allowed by destructive") {
		t.Errorf("deletePet without destructive: %+v", g)
	}
	hand := surface.Probes(d, surface.Policy{HandWritten: func(method, path string) string {
		if method == "GET" && surface.NormalizePath(path) == surface.NormalizePath("/v2/pets/{{pet}}") {
			return "mine"
		}
		return ""
	}})
	if g := generated(t, hand, "getPet"); g.Probe != nil || g.HandWritten != "mine" {
		t.Errorf("a hand-written probe for the same method and path wins: %+v", g)
	}
}

// OpenAPI links name the setup; an expression tocsin cannot follow is said, not guessed.
func TestLinks(t *testing.T) {
	doc := `openapi: 3.0.3
info: {title: t, version: "1"}
servers: [{url: /api}]
paths:
  /orders:
    post:
      operationId: createOrder
      requestBody:
        content:
          application/json:
            example: {sku: A1}
      responses:
        "201":
          description: created
          links:
            Pay: {operationId: payOrder, parameters: {orderId: '$response.body#/data/order.id'}}
            Odd: {operationRef: '#/paths/~1orders~1{orderId}~1pay/post', parameters: {orderId: '$request.path.x'}}
  /orders/{orderId}/pay:
    post:
      operationId: payOrder
      parameters: [{name: orderId, in: path, required: true, schema: {type: string}}]
      responses: {"200": {description: paid}, "409": {description: already paid}}
`
	d, err := surface.ParseOpenAPI([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	links := d.Operation("createOrder").Links
	if len(links) != 2 || links[1].Params["orderId"] != `data.order\.id` || links[1].Target != "payOrder" || links[0].Unsupported == "" || links[0].Target != "payOrder" {
		t.Fatalf("links %+v", links)
	}
	pol := allow("createOrder", "payOrder")
	pol.SingleUse = func(op *surface.Operation) bool { return op.ID == "payOrder" }
	g := generated(t, surface.Probes(d, pol), "payOrder")
	// The create has no DELETE to undo it: better untested than leaving orders behind.
	if g.Probe != nil || !strings.Contains(g.Reason, "no allowed DELETE") {
		t.Fatalf("payOrder: %+v", g)
	}
}

// A link builds the setup where the fallbacks cannot: the account /me answers with is not under a
// collection with a POST that creates it or a GET that lists it, so without the link {accountId} has
// no value at all.
func TestLinkBuildsTheSetup(t *testing.T) {
	doc := `openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /me:
    get:
      operationId: whoAmI
      responses:
        "200":
          description: the caller
          content:
            application/json:
              schema:
                type: object
                properties:
                  account: {type: object, properties: {id: {type: string}}}
          links:
            Account: {operationId: getAccount, parameters: {accountId: '$response.body#/account/id'}}
  /accounts/{accountId}:
    get:
      operationId: getAccount
      parameters: [{name: accountId, in: path, required: true, schema: {type: string}}]
      responses: {"200": {description: the account}}
`
	d, err := surface.ParseOpenAPI([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	g := generated(t, surface.Probes(d, allow()), "getAccount")
	p := g.Probe
	if p == nil {
		t.Fatalf("no probe: %s", g.Reason)
	}
	if want := "setup: GET /me (link Account gives {accountId})"; g.How != want {
		t.Errorf("How %q, want %q", g.How, want)
	}
	if p.Path != "/accounts/{{accountId}}" || len(p.Setup) != 1 || len(p.Teardown) != 0 {
		t.Fatalf("probe %s with %d setup and %d teardown steps", p.Path, len(p.Setup), len(p.Teardown))
	}
	step := p.Setup[0]
	if step.Method != "GET" || step.Path != "/me" || len(step.Extract) != 1 || step.Extract["accountId"] != "account.id" {
		t.Errorf("setup %s %s extract %v, want GET /me extract {accountId: account.id}", step.Method, step.Path, step.Extract)
	}

	// The same document without the link: the fallbacks find nothing, so the probe above is the link's.
	d, err = surface.ParseOpenAPI([]byte(strings.Replace(doc, "          links:\n            Account:", "          x-links:\n            Account:", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if g := generated(t, surface.Probes(d, allow()), "getAccount"); g.Probe != nil || !strings.Contains(g.Reason, "no value for the path parameter {accountId}") {
		t.Errorf("without the link: probe %v, how %q, reason %q", g.Probe != nil, g.How, g.Reason)
	}
}

// Recorded traffic becomes operations without its credentials; an id a POST answered with becomes a
// parameter linked to that POST.
func TestHAR(t *testing.T) {
	d, err := surface.ParseHAR(read(t, "traffic.har"), func(origin string) bool { return origin == "https://api.example" })
	if err != nil {
		t.Fatal(err)
	}
	var eps []string
	for _, op := range d.Operations {
		eps = append(eps, op.ID)
	}
	want := []string{"POST /items", "GET /items/{id}?view=full", "DELETE /items/{id}", "GET /health"}
	if !slices.Equal(eps, want) {
		t.Fatalf("operations %v, want %v", eps, want)
	}
	post := d.Operations[0]
	if post.Public() || post.Headers["Content-Type"] != "application/json" || len(post.Headers) != 1 || len(post.Links) != 2 {
		t.Errorf("POST /items: headers %v, links %+v, security %+v", post.Headers, post.Links, post.Security)
	}
	if !d.Operations[3].Public() || len(d.Notes) != 1 || !strings.Contains(d.Notes[0], "cdn.example") {
		t.Errorf("health public %v, notes %v", d.Operations[3].Public(), d.Notes)
	}
	gen := surface.Probes(d, allow("POST /items", "DELETE /items/{id}"))
	del := generated(t, gen, "DELETE /items/{id}").Probe
	if del == nil || len(del.Setup) != 1 || len(del.Verify) != 1 || del.Verify[0].Path != "/items/{{id}}?view=full" {
		t.Fatalf("DELETE probe %+v (how %q)", del, generated(t, gen, "DELETE /items/{id}").How)
	}
	for _, g := range gen {
		if g.Probe == nil {
			continue
		}
		for _, p := range g.Probe.WithSteps() {
			for _, v := range append([]string{p.Path, p.Body}, valuesOf(p.Headers)...) {
				if strings.Contains(v, "recorded-secret-token") || strings.Contains(v, "session=abc") || strings.Contains(v, "leak") {
					t.Errorf("probe %s replays a recorded credential: %q", g.Probe.Name, v)
				}
			}
		}
	}
}

func valuesOf(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func TestRefusals(t *testing.T) {
	for name, doc := range map[string]string{
		"external ref": `{"openapi": "3.0.0", "info": {"title": "t", "version": "1"}, "paths": {"/x": {"get": {"responses": {"200": {"$ref": "other.yaml#/r"}}}}}}`,
		"not openapi":  `{"hello": "world"}`,
		"openapi 4":    `{"openapi": "4.0.0"}`,
		"swagger 1.2":  `{"swagger": "1.2"}`,
		"a list":       `[1, 2]`,
		"alias bomb":   "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\ne: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\nswagger: '2.0'\n",
	} {
		if _, err := surface.ParseOpenAPI([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := surface.ParseOpenAPI(make([]byte, surface.MaxBytes+1)); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Errorf("an oversized document: %v", err)
	}
	if _, err := surface.ParseHAR([]byte(`{"log": {}}`), nil); err == nil {
		t.Error("a HAR file without entries was accepted")
	}
}

// A schema whose properties are itself gives an example body in bounded time.
func TestRecursiveSchemaIsBounded(t *testing.T) {
	props := []string{}
	for _, p := range "abcdefghij" {
		props = append(props, string(p)+": {$ref: '#/components/schemas/A'}")
	}
	doc := "openapi: 3.0.0\ninfo: {title: t, version: '1'}\ncomponents:\n  schemas:\n    A: {type: object, properties: {" + strings.Join(props, ", ") + "}}\n" +
		"paths:\n  /x:\n    post:\n      requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/A'}}}}\n      responses: {'200': {description: ok}}\n"
	start := time.Now()
	d, err := surface.ParseOpenAPI([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s", took)
	}
	if b := d.Operations[0].Body; b == nil || len(b.Example) > 100_000 {
		t.Errorf("body %+v", b)
	}
}

// A link from a create to another resource gives that resource's id, not the id of what the create
// made: the teardown must delete the order by the order's own id, extracted from the same response,
// and when the response does not say which field that is, the probe is refused, not guessed.
func TestLinkToAnotherResourceTearsDownTheCreated(t *testing.T) {
	doc := `openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /orders:
    post:
      operationId: createOrder
      requestBody: {content: {application/json: {example: {sku: A1}}}}
      responses:
        "201":
          description: created
          content:
            application/json:
              schema:
                type: object
                properties: {orderId: {type: string}, invoiceNo: {type: string}}
          links:
            Invoice: {operationId: getInvoice, parameters: {invoiceNo: '$response.body#/invoiceNo'}}
            Void: {operationId: voidInvoice, parameters: {invoiceNo: '$response.body#/invoiceNo'}}
  /orders/{orderId}:
    delete:
      operationId: deleteOrder
      parameters: [{name: orderId, in: path, required: true, schema: {type: string}, example: o-1}]
      responses: {"204": {description: deleted}}
  /invoices/{invoiceNo}:
    get:
      operationId: getInvoice
      parameters: [{name: invoiceNo, in: path, required: true, schema: {type: string}}]
      responses: {"200": {description: the invoice}}
    delete:
      operationId: voidInvoice
      parameters: [{name: invoiceNo, in: path, required: true, schema: {type: string}}]
      responses: {"204": {description: voided}}
`
	pol := allow("createOrder", "deleteOrder", "voidInvoice")
	probes := func(t *testing.T, doc string) []surface.Generated {
		t.Helper()
		d, err := surface.ParseOpenAPI([]byte(doc))
		if err != nil {
			t.Fatal(err)
		}
		return surface.Probes(d, pol)
	}

	t.Run("the create's response names its id", func(t *testing.T) {
		gen := probes(t, doc)
		for _, id := range []string{"getInvoice"} {
			g := generated(t, gen, id)
			p := g.Probe
			if p == nil {
				t.Fatalf("%s: no probe: %s", id, g.Reason)
			}
			if p.Path != "/invoices/{{invoiceNo}}" || len(p.Setup) != 1 || len(p.Teardown) != 1 {
				t.Fatalf("%s: probe %s with %d setup and %d teardown steps (how %q)", id, p.Path, len(p.Setup), len(p.Teardown), g.How)
			}
			step, td := p.Setup[0], p.Teardown[0]
			if step.Method != "POST" || step.Path != "/orders" || step.Extract["invoiceNo"] != "invoiceNo" || step.Extract["orderId"] != "orderId" {
				t.Errorf("%s: setup %s %s extract %v, want POST /orders extracting invoiceNo and the order's own orderId", id, step.Method, step.Path, step.Extract)
			}
			if want := "setup: POST /orders (link Invoice gives {invoiceNo}, not the id of what it creates: its response's orderId is, for the teardown)"; !strings.HasPrefix(g.How, want) {
				t.Errorf("%s: how %q, want it to begin %q", id, g.How, want)
			}
			if td.Method != "DELETE" || td.Path != "/orders/{{orderId}}" {
				t.Errorf("%s: teardown %s %s, want DELETE /orders/{{orderId}}: the order the setup created (how %q)", id, td.Method, td.Path, g.How)
			}
		}
	})

	// Voiding the invoice, the check would see it gone (the verify reads the invoice), take what
	// the setup created for removed, and skip the order's teardown.
	t.Run("the probe removes the linked resource", func(t *testing.T) {
		g := generated(t, probes(t, doc), "voidInvoice")
		if g.Probe != nil {
			t.Fatalf("probe with verify %s and teardown %s %s: the order would stay when the invoice is seen gone", g.Probe.Verify[0].Path, g.Probe.Teardown[0].Method, g.Probe.Teardown[0].Path)
		}
		if !strings.Contains(g.Reason, "another resource than the one its setup creates (POST /orders)") {
			t.Errorf("reason %q", g.Reason)
		}
	})

	t.Run("the link to another path gives the order's own id", func(t *testing.T) {
		own := strings.Replace(doc, "Invoice: {operationId: getInvoice, parameters: {invoiceNo: '$response.body#/invoiceNo'}}",
			"Invoice: {operationId: getInvoice, parameters: {invoiceNo: '$response.body#/orderId'}}", 1)
		g := generated(t, probes(t, own), "getInvoice")
		p := g.Probe
		if p == nil {
			t.Fatalf("no probe: %s", g.Reason)
		}
		if len(p.Setup) != 1 || len(p.Setup[0].Extract) != 1 || p.Setup[0].Extract["invoiceNo"] != "orderId" || len(p.Teardown) != 1 || p.Teardown[0].Path != "/orders/{{invoiceNo}}" {
			t.Errorf("setup %+v, teardown %+v: the link's own variable names the order", p.Setup, p.Teardown)
		}
		if strings.Contains(g.How, "not the id") {
			t.Errorf("how %q: the link does give the id of what it creates", g.How)
		}
	})

	t.Run("the DELETE's parameter has no example", func(t *testing.T) {
		g := generated(t, probes(t, strings.Replace(doc, ", example: o-1", "", 1)), "getInvoice")
		if g.Probe == nil || len(g.Probe.Teardown) != 1 || g.Probe.Teardown[0].Path != "/orders/{{orderId}}" {
			t.Errorf("probe %v, reason %q: the teardown takes the id from the setup, it needs no example", g.Probe != nil, g.Reason)
		}
	})

	t.Run("the link's variable and the order's id share a name", func(t *testing.T) {
		same := strings.NewReplacer("{orderId}", "{id}", "name: orderId", "name: id", "orderId: {type: string}", "id: {type: string}",
			"{invoiceNo}", "{id}", "name: invoiceNo", "name: id", "invoiceNo: '$", "id: '$").Replace(doc)
		g := generated(t, probes(t, same), "getInvoice")
		p := g.Probe
		if p == nil {
			t.Fatalf("no probe: %s", g.Reason)
		}
		if p.Path != "/invoices/{{id}}" || len(p.Setup) != 1 || p.Setup[0].Extract["id"] != "invoiceNo" || len(p.Teardown) != 1 {
			t.Fatalf("probe %s, setup %+v, how %q", p.Path, p.Setup, g.How)
		}
		own := strings.TrimSuffix(strings.TrimPrefix(p.Teardown[0].Path, "/orders/{{"), "}}")
		if own == "id" || p.Setup[0].Extract[own] != "id" {
			t.Errorf("teardown %s with setup extract %v: want the order's id in a variable of its own", p.Teardown[0].Path, p.Setup[0].Extract)
		}
	})

	t.Run("the create's response does not name its id", func(t *testing.T) {
		for name, d := range map[string]string{
			"no id field":   strings.Replace(doc, "orderId: {type: string}, ", "", 1),
			"no body shape": strings.Replace(doc, "properties: {orderId: {type: string}, invoiceNo: {type: string}}", "", 1),
		} {
			g := generated(t, probes(t, d), "getInvoice")
			if g.Probe != nil {
				t.Errorf("%s: probe with setup %+v and teardown %+v: tocsin cannot know which order to delete", name, g.Probe.Setup, g.Probe.Teardown)
				continue
			}
			if !strings.Contains(g.Reason, "teardown") || !strings.Contains(g.Reason, "link Invoice") || !strings.Contains(g.Reason, "POST /orders") {
				t.Errorf("%s: reason %q, want one that says the link's create cannot be torn down", name, g.Reason)
			}
		}
	})
}

// The teardown deletes in the collection the setup created in: a parent the create was sent to
// with the spec's example is the same parent in the teardown, not a variable no step defines.
func TestTeardownInTheCreatingCollection(t *testing.T) {
	doc := `openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /users/{uid}/items:
    post:
      operationId: addItem
      parameters: [{name: uid, in: path, required: true, schema: {type: string}, example: u1}]
      requestBody: {content: {application/json: {example: {name: a}}}}
      responses:
        "201":
          description: created
          content: {application/json: {schema: {type: object, properties: {id: {type: string}}}}}
  /users/{uid}/items/{id}:
    get:
      operationId: getItem
      parameters: [{name: uid, in: path, required: true, schema: {type: string}, example: u1}, {name: id, in: path, required: true, schema: {type: string}}]
      responses: {"200": {description: the item}}
    delete:
      operationId: deleteItem
      parameters: [{name: uid, in: path, required: true, schema: {type: string}, example: u1}, {name: id, in: path, required: true, schema: {type: string}}]
      responses: {"204": {description: deleted}}
`
	d, err := surface.ParseOpenAPI([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	g := generated(t, surface.Probes(d, allow("addItem", "deleteItem")), "getItem")
	p := g.Probe
	if p == nil {
		t.Fatalf("no probe: %s", g.Reason)
	}
	if len(p.Setup) != 1 || p.Setup[0].Path != "/users/u1/items" || len(p.Teardown) != 1 {
		t.Fatalf("probe %s with %d setup and %d teardown steps (how %q)", p.Path, len(p.Setup), len(p.Teardown), g.How)
	}
	if td := p.Teardown[0]; td.Method != "DELETE" || td.Path != "/users/u1/items/{{id}}" {
		t.Errorf("teardown %s %s, want DELETE /users/u1/items/{{id}}: where the setup created the item", td.Method, td.Path)
	}
}

// A setup that would create twice, a user and then an item in it, is refused: one teardown chain
// per setup stops at its first failure, and a check that sees the item gone takes the whole setup
// for removed, so the user could stay. With the user given, only the item is created and removed.
func TestSetupCreatesOnce(t *testing.T) {
	doc := `openapi: 3.0.3
info: {title: t, version: "1"}
paths:
  /users:
    post:
      operationId: addUser
      requestBody: {content: {application/json: {example: {name: a}}}}
      responses:
        "201":
          description: created
          content: {application/json: {schema: {type: object, properties: {uid: {type: string}}}}}
  /users/{uid}:
    delete:
      operationId: deleteUser
      parameters: [{name: uid, in: path, required: true, schema: {type: string}}]
      responses: {"204": {description: deleted}}
  /users/{uid}/items:
    post:
      operationId: addItem
      parameters: [{name: uid, in: path, required: true, schema: {type: string}}]
      requestBody: {content: {application/json: {example: {name: a}}}}
      responses:
        "201":
          description: created
          content: {application/json: {schema: {type: object, properties: {id: {type: string}}}}}
  /users/{uid}/items/{id}:
    get:
      operationId: getItem
      parameters: [{name: uid, in: path, required: true, schema: {type: string}}, {name: id, in: path, required: true, schema: {type: string}}]
      responses: {"200": {description: the item}}
    delete:
      operationId: deleteItem
      parameters: [{name: uid, in: path, required: true, schema: {type: string}}, {name: id, in: path, required: true, schema: {type: string}}]
      responses: {"204": {description: deleted}}
`
	d, err := surface.ParseOpenAPI([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	pol := allow("addUser", "deleteUser", "addItem", "deleteItem")
	for _, id := range []string{"getItem", "deleteItem"} {
		g := generated(t, surface.Probes(d, pol), id)
		if g.Probe != nil {
			var td []string
			for _, s := range g.Probe.Teardown {
				td = append(td, s.Method+" "+s.Path)
			}
			t.Errorf("%s: probe with %d setup steps and teardown %q (how %q): the user could be left behind", id, len(g.Probe.Setup), td, g.How)
		} else if !strings.Contains(g.Reason, "more than one resource (POST /users, then POST /users/{uid}/items)") {
			t.Errorf("%s: reason %q", id, g.Reason)
		}
	}

	pol.Vars = map[string]string{"uid": "u1"}
	for _, id := range []string{"getItem", "deleteItem"} {
		g := generated(t, surface.Probes(d, pol), id)
		p := g.Probe
		if p == nil {
			t.Fatalf("%s with vars.uid: no probe: %s", id, g.Reason)
		}
		if len(p.Setup) != 1 || p.Setup[0].Path != "/users/{{uid}}/items" || len(p.Teardown) != 1 || p.Teardown[0].Path != "/users/{{uid}}/items/{{id}}" {
			t.Errorf("%s with vars.uid: setup %d steps, teardown %+v (how %q)", id, len(p.Setup), p.Teardown, g.How)
		}
	}
}
