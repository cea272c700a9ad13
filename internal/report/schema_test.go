package report

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/tocsin/tocsin/internal/finding"
)

const (
	reportSchemaPath = "../../docs/report.schema.json"
	sarifSchemaPath  = "testdata/sarif-schema-2.1.0.json"
	// The SARIF schema's own id, so that its internal references resolve against it.
	sarifSchemaURL = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
)

var (
	schemaOnce               sync.Once
	reportSchema, sarifSchem *jsonschema.Schema
	schemaErr                error
)

func loadSchemas() (*jsonschema.Schema, *jsonschema.Schema, error) {
	schemaOnce.Do(func() {
		compile := func(path, url string) (*jsonschema.Schema, error) {
			f, err := os.Open(path)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			doc, err := jsonschema.UnmarshalJSON(f)
			if err != nil {
				return nil, err
			}
			c := jsonschema.NewCompiler()
			// Formats are annotations by default in 2020-12; asserting them catches a bad date-time or uri.
			c.AssertFormat()
			if err := c.AddResource(url, doc); err != nil {
				return nil, err
			}
			return c.Compile(url)
		}
		reportSchema, schemaErr = compile(reportSchemaPath, "https://github.com/tocsin/tocsin/docs/report.schema.json")
		if schemaErr == nil {
			sarifSchem, schemaErr = compile(sarifSchemaPath, sarifSchemaURL)
		}
	})
	return reportSchema, sarifSchem, schemaErr
}

func validate(tb testing.TB, sch *jsonschema.Schema, data []byte) error {
	tb.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		tb.Fatalf("not JSON: %v", err)
	}
	return sch.Validate(inst)
}

// ValidateReportJSON fails the test unless data (one report or an array) matches
// docs/report.schema.json. Exported for the lab tests in package report_test.
func ValidateReportJSON(tb testing.TB, data []byte) {
	tb.Helper()
	rs, _, err := loadSchemas()
	if err != nil {
		tb.Fatalf("load schemas: %v", err)
	}
	if err := validate(tb, rs, data); err != nil {
		tb.Errorf("report does not match docs/report.schema.json:\n%v", err)
	}
}

// ValidateSARIF fails the test unless data matches the official SARIF 2.1.0 schema.
func ValidateSARIF(tb testing.TB, data []byte) {
	tb.Helper()
	_, ss, err := loadSchemas()
	if err != nil {
		tb.Fatalf("load schemas: %v", err)
	}
	if err := validate(tb, ss, data); err != nil {
		tb.Errorf("SARIF does not match the 2.1.0 schema:\n%v", err)
	}
}

func TestGoldenReportsMatchSchema(t *testing.T) {
	reports := goldenReports()
	ValidateReportJSON(t, render(t, "json", reports))
	ValidateReportJSON(t, render(t, "json", reports[:1]))
	ValidateSARIF(t, render(t, "sarif", reports))
}

// The schemas must be able to fail: each of these breaks one rule that a real report could break.
func TestSchemasRejectBadDocuments(t *testing.T) {
	rs, ss, err := loadSchemas()
	if err != nil {
		t.Fatal(err)
	}
	good := string(render(t, "json", goldenReports()[:1]))
	graded := string(render(t, "json", goldenReports()[1:]))
	for name, bad := range map[string]string{
		"wrong schema value": strings.Replace(good, `"tocsin.report/v2"`, `"tocsin.report/v1"`, 1),
		"unknown status":     strings.Replace(good, `"status": "incomplete"`, `"status": "partial"`, 1),
		"unknown verdict":    strings.Replace(good, `"verdict": "inconclusive"`, `"verdict": "maybe"`, 1),
		"unknown severity":   strings.Replace(good, `"severity": "critical"`, `"severity": "severe"`, 1),
		"unlisted field":     strings.Replace(good, `"requests": 91,`, `"requests": 91, "extra": true,`, 1),
		"bad grade":          strings.Replace(graded, `"grade": "A"`, `"grade": "E"`, 1),
		"bad time":           strings.Replace(good, `"started_at": "2026-03-14T09:26:53Z"`, `"started_at": "yesterday"`, 1),
		"token not a label":  strings.Replace(good, `"token": "[token:1a2b3c4d]"`, `"token": "eyJhbGciOiJIUzI1NiJ9.e30.sig"`, 1),
	} {
		if bad == good || bad == graded {
			t.Fatalf("%s: the replacement did not apply; update the test", name)
		}
		if validate(t, rs, []byte(bad)) == nil {
			t.Errorf("%s: docs/report.schema.json accepted it", name)
		}
	}
	sarifGood := string(render(t, "sarif", goldenReports()))
	for name, bad := range map[string]string{
		"wrong version": strings.Replace(sarifGood, `"version": "2.1.0"`, `"version": "2.2.0"`, 1),
		"bad level":     strings.Replace(sarifGood, `"level": "error"`, `"level": "fatal"`, 1),
	} {
		if bad == sarifGood {
			t.Fatalf("%s: the replacement did not apply; update the test", name)
		}
		if validate(t, ss, []byte(bad)) == nil {
			t.Errorf("SARIF %s: the 2.1.0 schema accepted it", name)
		}
	}
}

// The schema must list exactly the fields the Go types marshal, and require exactly those that are
// never omitted: a field added to a struct without the schema (or the reverse) fails here even when
// no test report happens to fill it.
func TestSchemaMatchesTypes(t *testing.T) {
	raw, err := os.ReadFile(reportSchemaPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Defs map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
			Required   []string                   `json:"required"`
		} `json:"$defs"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	for def, typ := range map[string]reflect.Type{
		"report":          reflect.TypeFor[Report](),
		"tool":            reflect.TypeFor[Tool](),
		"target":          reflect.TypeFor[Target](),
		"check":           reflect.TypeFor[CheckResult](),
		"summary":         reflect.TypeFor[Summary](),
		"finding":         reflect.TypeFor[finding.Finding](),
		"location":        reflect.TypeFor[finding.Location](),
		"window":          reflect.TypeFor[finding.Window](),
		"inflight":        reflect.TypeFor[finding.Inflight](),
		"pass":            reflect.TypeFor[finding.Pass](),
		"bracket":         reflect.TypeFor[finding.Bracket](),
		"periodic":        reflect.TypeFor[finding.Periodic](),
		"reach":           reflect.TypeFor[finding.Reach](),
		"event":           reflect.TypeFor[finding.Event](),
		"exchange":        reflect.TypeFor[finding.Exchange](),
		"surface":         reflect.TypeFor[Surface](),
		"operation":       reflect.TypeFor[Operation](),
		"operation_check": reflect.TypeFor[OperationCheck](),
		"unselected":      reflect.TypeFor[Unselected](),
	} {
		d, ok := doc.Defs[def]
		if !ok {
			t.Errorf("schema has no $defs/%s for %s", def, typ)
			continue
		}
		var fields, required []string
		for f := range typ.Fields() {
			name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			fields = append(fields, name)
			if !strings.Contains(opts, "omitempty") && !strings.Contains(opts, "omitzero") {
				required = append(required, name)
			}
		}
		var props []string
		for p := range d.Properties {
			props = append(props, p)
		}
		sort.Strings(fields)
		sort.Strings(props)
		sort.Strings(required)
		req := slices.Sorted(slices.Values(d.Required))
		if !slices.Equal(fields, props) {
			t.Errorf("$defs/%s properties %v, but %s marshals %v", def, props, typ, fields)
		}
		if !slices.Equal(required, req) {
			t.Errorf("$defs/%s requires %v, but %s always writes %v", def, req, typ, required)
		}
	}
}
