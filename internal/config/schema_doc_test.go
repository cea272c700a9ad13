package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// SchemaPath is the JSON Schema of the config that editors use (docs/tocsin.schema.json).
var schemaPath = filepath.Join("..", "..", "docs", "tocsin.schema.json")

// The schema must name exactly the fields the decoder accepts, mapping by mapping, and the values
// Validate allows where it allows only some: a field added to the decoder without the schema (or
// the reverse) fails here, before an editor flags a valid config or completes an invalid one.
func TestSchemaListsTheDecodersFields(t *testing.T) {
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	type node struct {
		Properties    map[string]json.RawMessage `json:"properties"`
		PropertyNames struct {
			Enum []string `json:"enum"`
		} `json:"propertyNames"`
	}
	var doc struct {
		node
		Definitions map[string]node `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	var root map[string]json.RawMessage
	_ = json.Unmarshal(raw, &root)
	var top map[string]node
	_ = json.Unmarshal(root["properties"], &top)
	keys := func(n node) []string {
		var ks []string
		for k := range n.Properties {
			ks = append(ks, k)
		}
		return slices.Sorted(slices.Values(ks))
	}
	sorted := func(s []string) []string { return slices.Sorted(slices.Values(s)) }
	// A step lists the chain keys only to refuse them; the schema leaves them out.
	step := slices.DeleteFunc(slices.Clone(stepFields), func(f string) bool { return f == "setup" || f == "verify" || f == "teardown" })
	for _, tc := range []struct {
		where  string
		schema node
		fields []string
	}{
		{"the top level", doc.node, topFields},
		{"target", top["target"], targetFields},
		{"limits", top["limits"], limitFields},
		{"definitions/identity", doc.Definitions["identity"], identityFields},
		{"definitions/tokenSource", doc.Definitions["tokenSource"], tokenFields},
		{"definitions/oauth2", doc.Definitions["oauth2"], oauth2Fields},
		{"definitions/revokeHook", doc.Definitions["revokeHook"], revokeFields},
		{"definitions/changeHook", doc.Definitions["changeHook"], changeFields},
		{"definitions/downgradeHook", doc.Definitions["downgradeHook"], downgradeFields},
		{"definitions/surface (its mapping form)", surfaceMapping(t, raw), surfaceFields},
		{"definitions/rfc7009", doc.Definitions["rfc7009"], rfc7009Fields},
		{"definitions/httpHook", doc.Definitions["httpHook"], httpHookFields},
		{"definitions/probe", doc.Definitions["probe"], probeFields},
		{"definitions/probeStep (a step has no chains of its own)", doc.Definitions["probeStep"], step},
		{"definitions/loginStep", doc.Definitions["loginStep"], loginFields},
		{"definitions/listRequest", doc.Definitions["listRequest"], listFields},
		{"definitions/check", doc.Definitions["check"], checkFields},
	} {
		if got, want := keys(tc.schema), sorted(tc.fields); !slices.Equal(got, want) {
			t.Errorf("%s: the schema lists %v, the decoder accepts %v", tc.where, got, want)
		}
	}
	if got, want := sorted(top["checks"].PropertyNames.Enum), sorted(KnownChecks); !slices.Equal(got, want) {
		t.Errorf("checks: the schema names %v, this tocsin runs %v", got, want)
	}
	var enums struct {
		Definitions map[string]struct {
			Properties map[string]struct {
				AnyOf []struct {
					Enum []string `json:"enum"`
				} `json:"anyOf"`
			} `json:"properties"`
		} `json:"definitions"`
	}
	_ = json.Unmarshal(raw, &enums)
	for _, tc := range []struct {
		def, field string
		values     []string
	}{
		{"oauth2", "grant", grants},
		{"oauth2", "auth_style", authStyles},
		{"rfc7009", "auth_style", authStyles},
		{"rfc7009", "token_type_hint", tokenHints},
	} {
		p := enums.Definitions[tc.def].Properties[tc.field]
		if len(p.AnyOf) == 0 || !slices.Equal(sorted(p.AnyOf[0].Enum), sorted(tc.values)) {
			t.Errorf("definitions/%s/%s: the schema allows %+v, Validate %v", tc.def, tc.field, p.AnyOf, tc.values)
		}
	}
}

// surfaceMapping returns the mapping form of definitions/surface, the second of its anyOf (the
// first is a plain file or URL).
func surfaceMapping(t *testing.T, raw []byte) (n struct {
	Properties    map[string]json.RawMessage `json:"properties"`
	PropertyNames struct {
		Enum []string `json:"enum"`
	} `json:"propertyNames"`
}) {
	var doc struct {
		Definitions struct {
			Surface struct {
				AnyOf []json.RawMessage `json:"anyOf"`
			} `json:"surface"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil || len(doc.Definitions.Surface.AnyOf) != 2 {
		t.Fatalf("definitions/surface: want anyOf [file or URL, mapping]: %v", err)
	}
	if err := json.Unmarshal(doc.Definitions.Surface.AnyOf[1], &n); err != nil {
		t.Fatal(err)
	}
	return n
}
