package surface_test

import (
	"strings"
	"testing"

	"github.com/tocsin/tocsin/internal/surface"
)

// checkDocument holds a parsed document to what the rest of tocsin relies on, and makes probes of
// it with every write allowed, so that the generator meets the same hostile shapes as the parser.
func checkDocument(t *testing.T, d *surface.Document) {
	for _, op := range d.Operations {
		if op.Method == "" || op.ID == "" {
			t.Fatalf("operation without method or id: %+v", op)
		}
	}
	all := surface.Policy{
		Destructive: func(*surface.Operation) bool { return true },
		SingleUse:   func(*surface.Operation) bool { return true },
		Vars:        map[string]string{"id": "1"},
	}
	for _, g := range surface.Probes(d, all) {
		if g.Probe == nil && g.Reason == "" && g.HandWritten == "" {
			t.Fatalf("operation %s: no probe and no reason", g.Op.ID)
		}
		if g.Probe != nil && g.Probe.Name == "" {
			t.Fatalf("operation %s: a probe without a name", g.Op.ID)
		}
	}
}

// FuzzParseOpenAPI feeds untrusted specs to the parser: it returns a document or an error, never
// panics, and what it returns can be made into probes.
func FuzzParseOpenAPI(f *testing.F) {
	f.Add(read(f, "petstore-swagger2.yaml"))
	f.Add([]byte(`{"openapi":"3.1.0","info":{"title":"t","version":"1"},"paths":{"/a/{id}":{"get":{"parameters":[{"name":"id","in":"path","required":true,"schema":{"type":"string"}}],"responses":{"200":{"description":"ok"}}}},"/a":{"post":{"responses":{"201":{"description":"c","content":{"application/json":{"schema":{"type":"object","properties":{"id":{"type":"string"}}}}},"links":{"L":{"operationId":"x","parameters":{"id":"$response.body#/id"}}}}}}}}}`))
	f.Add([]byte("openapi: 3.0.0\ninfo: {title: t, version: '1'}\ncomponents:\n  schemas:\n    A: {type: object, required: [a], properties: {a: {$ref: '#/components/schemas/A'}}}\npaths:\n  /x:\n    post:\n      requestBody: {content: {application/json: {schema: {$ref: '#/components/schemas/A'}}}}\n      responses: {'200': {description: ok}}\n"))
	f.Add([]byte(`{"swagger":"2.0","paths":{"/x/{id}":{"delete":{"parameters":[{"name":"id","in":"path","type":"string","required":true}],"responses":{"204":{"description":"ok"}}}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			t.Skip()
		}
		d, err := surface.ParseOpenAPI(data)
		if err != nil {
			if d != nil {
				t.Fatal("a document returned with an error")
			}
			return
		}
		checkDocument(t, d)
	})
}

// FuzzParseHAR does the same for recorded traffic, and checks that a recorded credential is never
// replayed.
func FuzzParseHAR(f *testing.F) {
	f.Add(read(f, "traffic.har"))
	f.Add([]byte(`{"log":{"entries":[{"request":{"method":"POST","url":"http://a/x","headers":[{"name":"Authorization","value":"Bearer SECRETVALUE"}]},"response":{"status":201,"content":{"mimeType":"application/json","text":"{\"id\":\"abc\"}"}}},{"request":{"method":"GET","url":"http://a/x/abc/abc"},"response":{"status":200,"content":{}}}]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 64<<10 {
			t.Skip()
		}
		d, err := surface.ParseHAR(data, nil)
		if err != nil {
			return
		}
		checkDocument(t, d)
		for _, op := range d.Operations {
			for k, v := range op.Headers {
				if strings.EqualFold(k, "authorization") || strings.Contains(v, "SECRETVALUE") {
					t.Fatalf("operation %s replays a credential header %s", op.ID, k)
				}
			}
		}
	})
}
