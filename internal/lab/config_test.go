package lab

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

// exampleOrigin is the lab address examples/tocsin.yaml is written for.
const exampleOrigin = "http://127.0.0.1:8787"

func TestConfigYAMLMatchesExample(t *testing.T) {
	h := startLab(t, Options{Flavor: Vulnerable})
	got := h.lab.ConfigYAML()
	for _, want := range []string{"- " + h.lab.URL(), "toctou/revoked-token-accepted:", "toctou/scope-downgrade-ignored:", "${TOCSIN_LAB_CLIENT_SECRET}", "${TOCSIN_LAB_ADMIN_KEY}"} {
		if !strings.Contains(string(got), want) {
			t.Errorf("ConfigYAML lacks %q", want)
		}
	}
	if strings.Contains(string(got), h.lab.Env()["TOCSIN_LAB_CLIENT_SECRET"]) {
		t.Error("ConfigYAML embeds the client secret instead of referring to it")
	}

	// The lab's config must say exactly what the documented example says, for the lab's URL.
	example, err := os.ReadFile("../../examples/tocsin.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var want, have map[string]any
	if err := yaml.Unmarshal([]byte(strings.ReplaceAll(string(example), exampleOrigin, h.lab.URL())), &want); err != nil {
		t.Fatalf("example: %v", err)
	}
	if err := yaml.Unmarshal(got, &have); err != nil {
		t.Fatalf("ConfigYAML is not YAML: %v\n%s", err, got)
	}
	for key := range want {
		if !reflect.DeepEqual(have[key], want[key]) {
			t.Errorf("section %q differs from examples/tocsin.yaml:\n got: %v\nwant: %v", key, have[key], want[key])
		}
	}
	if len(have) != len(want) {
		t.Errorf("ConfigYAML has %d sections; the example has %d", len(have), len(want))
	}
	checks, _ := have["checks"].(map[string]any)
	rev, _ := checks["toctou/revoked-token-accepted"].(map[string]any)
	if !reflect.DeepEqual(rev["probes"], []any{"read-item"}) {
		t.Errorf("revoked-token-accepted probes = %v", rev["probes"])
	}
}
