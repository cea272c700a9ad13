package surface_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/tocsin/tocsin/internal/surface"
)

// notesSpec has owned objects (notes, created by POST /notes and listed by GET /notes), and the
// caller's own profile (GET and PATCH /me), with readOnly properties on both.
const notesSpec = `openapi: 3.1.0
info: {title: notes, version: "1"}
security: [{oauth2: [notes]}]
components:
  securitySchemes:
    oauth2: {type: oauth2, flows: {password: {tokenUrl: /token, scopes: {notes: n}}}}
  schemas:
    Note:
      type: object
      properties:
        id: {type: string, readOnly: true}
        owner: {type: string, readOnly: true}
        pinned: {type: boolean, readOnly: true}
        title: {type: string}
paths:
  /notes:
    get:
      responses: {"200": {description: l, content: {application/json: {schema: {type: object, properties: {notes: {type: array, items: {$ref: "#/components/schemas/Note"}}}}}}}}
    post:
      operationId: createNote
      requestBody: {content: {application/json: {schema: {type: object, required: [title], properties: {title: {type: string}}}}}}
      responses: {"201": {description: c, content: {application/json: {schema: {$ref: "#/components/schemas/Note"}}}}}
  /notes/{id}:
    parameters: [{name: id, in: path, required: true, schema: {type: string}}]
    get:
      operationId: getNote
      responses: {"200": {description: n, content: {application/json: {schema: {$ref: "#/components/schemas/Note"}}}}}
    put:
      operationId: updateNote
      requestBody: {content: {application/json: {schema: {type: object, properties: {title: {type: string}}}, example: {title: changed}}}}
      responses: {"200": {description: n, content: {application/json: {schema: {$ref: "#/components/schemas/Note"}}}}}
    delete:
      operationId: deleteNote
      responses: {"204": {description: d}}
  /me:
    get:
      operationId: getMe
      responses: {"200": {description: p, content: {application/json: {schema: {type: object, properties: {name: {type: string}, role: {type: string, readOnly: true}}}}}}}
    patch:
      operationId: updateMe
      requestBody: {content: {application/json: {schema: {type: object, required: [name], properties: {name: {type: string}, role: {type: string, readOnly: true}}}}}}
      responses: {"200": {description: p}}
`

// What the authz checks pick from is recorded: readOnly properties per operation (request and
// success response schemas), the object a setup creates, the collection's list, a read back for an
// update, and an update of the caller itself; an update of nothing the scan made stays unmade.
func TestAuthzFacts(t *testing.T) {
	d, err := surface.ParseOpenAPI([]byte(notesSpec))
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Operation("updateNote").ReadOnly; !maps.Equal(got, map[string]string{"id": "string", "owner": "string", "pinned": "boolean"}) {
		t.Errorf("updateNote readOnly %v", got)
	}
	if got := d.Operation("updateMe").ReadOnly; !maps.Equal(got, map[string]string{"role": "string"}) {
		t.Errorf("updateMe readOnly %v (the request schema's)", got)
	}
	if got := d.Operation("deleteNote").ReadOnly; got != nil {
		t.Errorf("deleteNote readOnly %v: no schema, none", got)
	}

	gen := surface.Probes(d, allow("createNote", "updateNote", "deleteNote", "updateMe"))
	get := generated(t, gen, "getNote")
	if get.Creates != "POST /notes" || get.Probe == nil || get.Probe.List == nil || get.Probe.List.Path != "/notes" || get.Probe.List.Method != "GET" {
		t.Fatalf("getNote: %+v, probe %+v: want its object created by POST /notes and GET /notes as its list", get, get.Probe)
	}
	put := generated(t, gen, "updateNote")
	if put.Probe == nil || len(put.Probe.Verify) != 1 || put.Probe.Verify[0].Path != put.Probe.Path || put.Probe.Verify[0].Method != "GET" {
		t.Fatalf("updateNote probe %+v: want a GET of the same note as its verify", put.Probe)
	}
	if want := map[string]string{"id": `"tocsin-assigned"`, "owner": `"tocsin-assigned"`, "pinned": "true"}; !maps.Equal(put.Probe.Assign, want) {
		t.Errorf("updateNote assign %v, want %v", put.Probe.Assign, want)
	}
	if get.Probe.Assign != nil {
		t.Errorf("getNote assign %v: a read assigns nothing", get.Probe.Assign)
	}
	me := generated(t, gen, "updateMe")
	if !me.OnIdentity || me.Probe == nil || len(me.Probe.Verify) != 1 || me.Probe.Verify[0].Path != "/me" || me.Creates != "" {
		t.Fatalf("updateMe: %+v: want an update of the caller, read back with GET /me", me)
	}

	// Without destructive the update of the caller is not made.
	gen = surface.Probes(d, allow("createNote", "deleteNote"))
	if me := generated(t, gen, "updateMe"); me.Probe != nil || me.OnIdentity {
		t.Errorf("updateMe made without destructive: %+v", me)
	}
	if g := generated(t, gen, "getNote"); !slices.Contains([]string{"POST /notes"}, g.Creates) {
		t.Errorf("getNote creates %q", g.Creates)
	}
}
