package probe

import (
	"strings"
	"testing"
)

func TestExtract(t *testing.T) {
	body := []byte(`{"id": 42, "big": 12345678901234567890, "f": 1.5e3, "small": 2.5E-3, "neg": -1.20,
		"s": "a \"q\" b", "t": true, "n": null,
		"data": {"items": [{"id": "x1"}, {"id": 7}]}, "dot.key": 1}`)
	for _, tc := range []struct{ path, want string }{
		{"id", "42"},
		{"big", "12345678901234567890"},
		{"f", "1500"},
		{"small", "0.0025"},
		{"neg", "-1.2"},
		{"s", `a "q" b`},
		{"t", "true"},
		{"data.items.0.id", "x1"},
		{"data.items.1.id", "7"},
	} {
		got, err := Extract(body, tc.path)
		if err != nil || got != tc.want {
			t.Errorf("Extract(%s) = %q, %v; want %q", tc.path, got, err, tc.want)
		}
	}
	for _, tc := range []struct{ path, want string }{
		{"missing", "matches nothing"},
		{"n", "null, not a scalar"},
		{"data", "object, not a scalar"},
		{"data.items", "array, not a scalar"},
		{"data.items.2.id", "matches nothing"},
		{"data.items.x", "matches nothing"},
		{"data.items.-1", "matches nothing"},
		{"id.x", "matches nothing"},
		{"", "empty selector"},
		{"data..items", "matches nothing"},
	} {
		_, err := Extract(body, tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Extract(%q) err = %v, want %q", tc.path, err, tc.want)
		}
	}
	for _, bad := range []string{"", "<html>", `{"id": 1} trailing`, `{"id": 1e99999}`} {
		if got, err := Extract([]byte(bad), "id"); err == nil {
			t.Errorf("Extract(%q) = %q, want an error", bad, got)
		}
	}
}

// Selectors pick from arrays by a condition: the coupon flow of a real API lists coupons and the
// scan needs the newest unused one, or the one whose code it just applied.
func TestExtractSelectors(t *testing.T) {
	body := []byte(`{"coupons": [
		{"id": 1, "used": true, "code": "A"},
		{"id": 2, "used": false, "code": "B"},
		{"id": 3, "used": false, "code": "C"}]}`)
	for _, tc := range []struct{ sel, want string }{
		{"coupons.#(used==false).id", "2"},
		{"coupons.#(used==false)#.id|@reverse|0", "3"},
		{`coupons.#(code=="C").id`, "3"},
		{"coupons.#", "3"},
		{"coupons.#(id>1)#|#", "2"},
	} {
		got, err := Extract(body, tc.sel)
		if err != nil || got != tc.want {
			t.Errorf("Extract(%s) = %q, %v; want %q", tc.sel, got, err, tc.want)
		}
	}
	if _, err := Extract(body, `coupons.#(code=="Z").id`); err == nil || !strings.Contains(err.Error(), "matches nothing") {
		t.Errorf("a query that matches nothing: err = %v", err)
	}
}

func TestPlainNumber(t *testing.T) {
	for in, want := range map[string]string{
		"0": "0", "-0": "-0", "10": "10", "1e0": "1", "1E+2": "100", "0.1": "0.1", "1.0": "1",
		"-1e-2": "-0.01", "123.456e1": "1234.56", "0e5": "0", "5e-1": "0.5", "100e-2": "1",
	} {
		got, err := plainNumber(in)
		if err != nil || got != want {
			t.Errorf("plainNumber(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
}

// FuzzExtract feeds arbitrary server responses and paths: Extract must return, not panic, and never
// blow a short body up into a huge value (the exponent bound).
func FuzzExtract(f *testing.F) {
	f.Add([]byte(`{"id": 42}`), "id")
	f.Add([]byte(`{"data": {"items": [{"id": "x"}]}}`), "data.items.0.id")
	f.Add([]byte(`[1, 2.5e10, -3E-4]`), "1")
	f.Add([]byte(`{"a": [[[]]]}`), "a.0.0.0")
	f.Add([]byte(`{"n": 1e1000}`), "n")
	f.Add([]byte(`not json`), "x")
	f.Add([]byte(`{"c": [{"u": false, "id": 1}]}`), "c.#(u==false)#.id|@reverse|0")
	f.Add([]byte(`[{"a": "b"}]`), `#(a=="b").a`)
	f.Fuzz(func(t *testing.T, body []byte, path string) {
		got, err := Extract(body, path)
		if err != nil {
			return
		}
		if len(got) > len(body)+2*maxExponent+2 {
			t.Errorf("Extract returned %d bytes from a %d-byte body", len(got), len(body))
		}
	})
}
