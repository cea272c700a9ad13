package probe

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/redact"
)

// A chain runs its steps in order, each as the identity it names, each step's extracts feeding the
// next; a step that is refused stops the chain with its status and body.
func TestRunChain(t *testing.T) {
	var mu sync.Mutex
	var auth []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		auth = append(auth, r.Method+" "+r.URL.Path+" "+r.Header.Get("Authorization"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/referrals":
			fmt.Fprint(w, `{"code": "REF-7"}`)
		case "/apply/REF-7":
			fmt.Fprint(w, `{"message": "applied"}`)
		case "/coupons":
			fmt.Fprint(w, `{"coupons": [{"id": 1, "used": true, "code": "REF-1"}, {"id": 2, "used": false, "code": "REF-7"}, {"id": 3, "used": false, "code": "X"}]}`)
		default:
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error": "required=[write:issue]"}`)
		}
	}))
	defer srv.Close()
	c, err := client.New(client.Options{Origins: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	step := func(as, path string, extract map[string]string) *Probe {
		return &Probe{Name: path, Method: "POST", URL: srv.URL + path, Path: path, As: as, Extract: extract}
	}
	creds := func(_ context.Context, as string) (Vars, error) {
		switch as {
		case "":
			return Vars{"token": "alice-token"}, nil
		case Anonymous:
			return Vars{"token": ""}, nil
		case "bob":
			return Vars{"token": "bob-token", "token.id": "b1"}, nil
		}
		return nil, errors.New("no identity " + as)
	}
	steps := []*Probe{
		step("bob", "/referrals", map[string]string{"code": "code"}),
		step("", "/apply/{{code}}", nil),
		step(Anonymous, "/coupons", map[string]string{"coupon": `coupons.#(code=="{{code}}").id`, "last": "coupons.#(used==false)#.id|@reverse|0"}),
	}
	results, got, err := RunChain(context.Background(), c, "setup", steps, Vars{}, creds, &redact.Redactor{})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 3 || got["code"] != "REF-7" || got["coupon"] != "2" || got["last"] != "3" {
		t.Errorf("results %d, extracted %v", len(results), got)
	}
	want := []string{"POST /referrals Bearer bob-token", "POST /apply/REF-7 Bearer alice-token", "POST /coupons "}
	if strings.Join(auth, "|") != strings.Join(want, "|") {
		t.Errorf("requests %q, want %q", auth, want)
	}

	// A refused step: its status and the start of its body name the problem.
	_, _, err = RunChain(context.Background(), c, "setup", []*Probe{step("", "/refused", nil)}, Vars{}, creds, &redact.Redactor{})
	var se *StepError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "setup step 1 (POST /refused) answered 400") || !strings.Contains(err.Error(), "required=[write:issue]") {
		t.Errorf("refused step: %v", err)
	}
}

// Unique values are new each time, and {{seq}} counts.
func TestUnique(t *testing.T) {
	a, b := Unique(), Unique()
	if a["uuid"] == b["uuid"] || a["random"] == b["random"] || a["seq"] == b["seq"] || len(a["uuid"]) != 36 || len(a["random"]) < 20 {
		t.Errorf("unique values %v and %v", a, b)
	}
}
