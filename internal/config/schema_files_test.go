package config_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/rogpeppe/go-internal/txtar"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/lab"
)

func compileConfigSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "docs", "tocsin.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("tocsin.schema.json", doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile("tocsin.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// validateYAML checks a config file against the schema as an editor would, before ${VARS} are
// resolved.
func validateYAML(t *testing.T, sch *jsonschema.Schema, data []byte) error {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatalf("not YAML: %v", err)
	}
	js, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	return sch.Validate(inst)
}

// anyEnv sets every ${VAR} a config names, so that only its shape is judged.
func anyEnv(name string) (string, bool) {
	if strings.Contains(name, "ORIGIN") {
		return "http://127.0.0.1:9", true
	}
	return "value-of-" + name, true
}

// Every config the project ships or tests with is valid against docs/tocsin.schema.json when tocsin
// accepts it, and invalid when the decoder finds a field it does not know: the example, the Flask
// API's, the lab's generated config and those of the command-line tests. (A config broken in other
// ways, on purpose, may go either way: the schema cannot see that an origin is not allowed.)
func TestConfigsMatchTheSchema(t *testing.T) {
	sch := compileConfigSchema(t)
	files := map[string][]byte{}
	for _, p := range []string{"../../examples/tocsin.yaml", "../../testdata/flask-api/tocsin.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[p] = data
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, err := lab.Start(ctx, "127.0.0.1:0", lab.Options{Flavor: lab.Vulnerable})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	files["lab --write-config"] = l.ConfigYAML()
	files["lab, from its OpenAPI document only"] = l.SurfaceConfigYAML()
	scripts, _ := filepath.Glob("../../cmd/tocsin/testdata/script/*.txtar")
	for _, s := range scripts {
		a, err := txtar.ParseFile(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range a.Files {
			if strings.HasSuffix(f.Name, ".yaml") {
				files[filepath.Base(s)+": "+f.Name] = f.Data
			}
		}
	}
	if len(files) < 5 {
		t.Fatalf("only %d configs found: the test would prove little", len(files))
	}
	accepted, unknownSeen := 0, 0
	defer func() {
		if accepted < 4 || unknownSeen == 0 {
			t.Errorf("%d configs accepted, %d with an unknown field: the test would prove little", accepted, unknownSeen)
		}
	}()
	for name, data := range files {
		_, perr := config.Parse(name, data, anyEnv)
		unknown := perr != nil && strings.Contains(perr.Error(), "unknown field")
		if perr == nil {
			accepted++
		}
		if unknown {
			unknownSeen++
		}
		serr := validateYAML(t, sch, data)
		switch {
		case unknown && serr == nil:
			t.Errorf("%s: the decoder refuses a field the schema accepts: %v", name, perr)
		case perr == nil && serr != nil:
			t.Errorf("%s: the schema refuses a config the decoder accepts:\n%v", name, serr)
		}
	}
}
