package probe

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/hostile"
	"github.com/tocsin/tocsin/internal/redact"
)

// seen is what the fake API received.
type seen struct {
	Method, Path, RawPath, Query, Auth, Custom, Body string
}

// newAPI starts a fake API on 127.0.0.1 that records each request and answers with the status named by
// the "status" query parameter (default 200) and a JSON body.
func newAPI(t *testing.T) (*httptest.Server, *client.Client, func() seen) {
	t.Helper()
	var mu sync.Mutex
	var last seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		last = seen{r.Method, r.URL.Path, r.URL.EscapedPath(), r.URL.RawQuery, r.Header.Get("Authorization"), r.Header.Get("X-Custom"), string(body)}
		mu.Unlock()
		status := 200
		if s := r.URL.Query().Get("status"); s != "" {
			status, _ = strconv.Atoi(s)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, `{"id": 42, "data": {"items": [{"id": "it-1"}]}}`)
	}))
	t.Cleanup(srv.Close)
	c, err := client.New(client.Options{Origins: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	return srv, c, func() seen { mu.Lock(); defer mu.Unlock(); return last }
}

func TestDoSubstitutesAndSendsDefaultAuth(t *testing.T) {
	srv, c, last := newAPI(t)
	p := &Probe{
		Name:    "create",
		Method:  http.MethodPost,
		URL:     srv.URL + "/items/{{ id }}?tag={{tag}}",
		Path:    "/items/{{ id }}?tag={{tag}}",
		Headers: map[string]string{"X-Custom": "v={{tag}}", "Content-Type": "application/json"},
		Body:    `{"name": "{{tag}}"}`,
		Extract: map[string]string{"item_id": "data.items.0.id", "n": "id"},
	}
	res, err := p.Do(context.Background(), c, Vars{"id": "a/b", "tag": "x&y", "token": "tok-123"})
	if err != nil {
		t.Fatal(err)
	}
	got := last()
	want := seen{"POST", "/items/a/b", "/items/a%2Fb", "tag=x%26y", "Bearer tok-123", "v=x&y", `{"name": "x&y"}`}
	if got != want {
		t.Errorf("server saw %+v\nwant %+v", got, want)
	}
	if res.Outcome != Accepted || res.Extracted["item_id"] != "it-1" || res.Extracted["n"] != "42" {
		t.Errorf("outcome %v, extracted %v", res.Outcome, res.Extracted)
	}
	if res.Method != "POST" || res.URL != srv.URL+"/items/a%2Fb?tag=x%26y" {
		t.Errorf("result names %s %s", res.Method, res.URL)
	}
}

func TestDoKeepsCustomAuthorization(t *testing.T) {
	srv, c, last := newAPI(t)
	p := &Probe{Name: "p", Method: "GET", URL: srv.URL + "/x", Headers: map[string]string{"authorization": "Token {{token}}"}}
	if _, err := p.Do(context.Background(), c, Vars{"token": "tok-123"}); err != nil {
		t.Fatal(err)
	}
	if got := last().Auth; got != "Token tok-123" {
		t.Errorf("Authorization = %q, want the probe's own header", got)
	}
	p = &Probe{Name: "p", Method: "GET", URL: srv.URL + "/x"}
	if _, err := p.Do(context.Background(), c, Vars{}); err != nil {
		t.Fatal(err)
	}
	if got := last().Auth; got != "" {
		t.Errorf("Authorization = %q, want none without a token", got)
	}
}

func TestDoOutcomes(t *testing.T) {
	srv, c, _ := newAPI(t)
	for _, tc := range []struct {
		status         int
		accept, reject []int
		want           Outcome
	}{
		{200, nil, nil, Accepted},
		{204, nil, nil, Accepted},
		{401, nil, nil, Rejected},
		{403, nil, nil, Rejected},
		{404, nil, nil, Inconclusive},
		{500, nil, nil, Inconclusive},
		{429, nil, nil, Inconclusive},
		{200, []int{201}, nil, Inconclusive},
		{201, []int{201}, nil, Accepted},
		{404, []int{200}, []int{404}, Rejected},
		{401, []int{200}, []int{404}, Inconclusive},
	} {
		p := &Probe{Name: "p", Method: "GET", URL: srv.URL + "/x?status=" + strconv.Itoa(tc.status), Accept: tc.accept, Reject: tc.reject}
		res, err := p.Do(context.Background(), c, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.Response.Status != tc.status || res.Outcome != tc.want {
			t.Errorf("status %d accept %v reject %v: got %d %v, want %v", tc.status, tc.accept, tc.reject, res.Response.Status, res.Outcome, tc.want)
		}
	}
}

func TestDoErrors(t *testing.T) {
	srv, c, _ := newAPI(t)
	ctx := context.Background()

	p := &Probe{Name: "read-item", Method: "GET", URL: srv.URL + "/items/{{item_id}}"}
	if _, err := p.Do(ctx, c, Vars{"token": "t"}); err == nil || !strings.Contains(err.Error(), `unknown variable "item_id"`) || !strings.Contains(err.Error(), `probe "read-item"`) {
		t.Errorf("err = %v, want the probe and the unknown variable named", err)
	}
	p = &Probe{Name: "p", Method: "GET", URL: srv.URL + "/x", Body: "{{nope}}"}
	if _, err := p.Do(ctx, c, nil); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("err = %v, want the unknown body variable named", err)
	}

	p = &Probe{Name: "p", Method: "GET", URL: srv.URL + "/x", Extract: map[string]string{"v": "data.missing"}}
	res, err := p.Do(ctx, c, nil)
	if err == nil || !strings.Contains(err.Error(), "data.missing") || res == nil {
		t.Errorf("err = %v, res %v; want the missing path named and the result kept", err, res)
	}
	// Extract applies to accepted responses only: a rejected one has nothing to extract.
	p = &Probe{Name: "p", Method: "GET", URL: srv.URL + "/x?status=403", Extract: map[string]string{"v": "data.missing"}}
	if res, err := p.Do(ctx, c, nil); err != nil || res.Outcome != Rejected {
		t.Errorf("rejected response: %v, %v", res, err)
	}

	p = &Probe{Name: "p", Method: "GET", URL: "http://127.0.0.1:1/x"}
	if _, err := p.Do(ctx, c, nil); !errors.Is(err, client.ErrOrigin) {
		t.Errorf("err = %v, want ErrOrigin", err)
	}
}

// A redirect off the allowed origins that the probe neither accepts nor rejects is an error that says
// where it pointed (without the query, which may hold a secret) and what to change; listed in reject,
// it is a refusal like any other.
func TestDoOffOriginRedirect(t *testing.T) {
	h := hostile.Start(t, hostile.Options{Default: hostile.RedirectOffOrigin})
	c, err := client.New(client.Options{Origins: []string{h.URL()}})
	if err != nil {
		t.Fatal(err)
	}
	p := &Probe{Name: "read", Method: http.MethodGet, URL: h.URL() + "/items?key=ProbeS3cret", Path: "/items"}
	_, err = p.Do(context.Background(), c, Vars{"token": "tok-1"})
	want := "answered 302, a redirect to " + h.DecoyURL() + "/items, not followed"
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "reject statuses") ||
		strings.Contains(err.Error(), "S3cret") || strings.Contains(err.Error(), hostile.DecoyQuery) {
		t.Errorf("err = %v, want one containing %q and a hint, without the queries", err, want)
	}
	p.Reject = []int{302}
	res, err := p.Do(context.Background(), c, Vars{"token": "tok-1"})
	if err != nil || res.Outcome != Rejected {
		t.Errorf("with reject [302]: %v, %v; want rejected", res, err)
	}
	if h.DecoyConnections() != 0 {
		t.Errorf("the decoy got %d connections", h.DecoyConnections())
	}
}

// What a probe extracts is a secret of the run from the moment it is read, and a result names the
// token its request really carried.
func TestDoRegistersExtractsAndTheCarriedToken(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"id":"r2","n":42}`)
	}))
	t.Cleanup(srv.Close)
	red := &redact.Redactor{}
	c, err := client.New(client.Options{Origins: []string{srv.URL}, Redactor: red})
	if err != nil {
		t.Fatal(err)
	}
	p := &Probe{Name: "setup", Method: "POST", URL: srv.URL + "/coupons", Path: "/coupons", Extract: map[string]string{"id": "id", "n": "n"}}
	r, err := p.Do(context.Background(), c, Vars{"token": "tok-alice"})
	if err != nil {
		t.Fatal(err)
	}
	if got := red.String("/coupons/r2/redeem?n=42"); got != "/coupons/"+red.Label("r2")+"/redeem?n="+red.Label("42") || !strings.Contains(got, "[extract:") {
		t.Errorf("extracts not registered: %q", got)
	}
	if r.Token != "tok-alice" {
		t.Errorf("token %q, want the one it carried", r.Token)
	}
	admin := &Probe{Name: "admin", URL: srv.URL + "/x", Path: "/x", Headers: map[string]string{"Authorization": "Key admin-key-1"}}
	if r, err := admin.Do(context.Background(), c, Vars{"token": "tok-alice"}); err != nil || r.Token != "admin-key-1" {
		t.Errorf("a request with its own Authorization: token %q (err %v), want the credential it carried", r.Token, err)
	}
	if r, err := p.WithoutCredential().Do(context.Background(), c, Vars{"token": ""}); err != nil || r.Token != "" {
		t.Errorf("a request without a credential: token %q (err %v)", r.Token, err)
	}
}

func TestEndpointLeavesQueryValuesOut(t *testing.T) {
	p := &Probe{Method: "GET", Path: "/reports/summary?api_key=pk-QUERY-SECRET-9d8e7f&id={{id}}"}
	if got, want := p.Endpoint(), "GET /reports/summary?api_key=...&id={{id}}"; got != want {
		t.Errorf("Endpoint() = %q, want %q", got, want)
	}
}

// Evidence shows a secret where the template put it, whatever its length and whatever it is glued to.
func TestShownURL(t *testing.T) {
	red := &redact.Redactor{}
	red.Add("extract", "42")
	red.Add("env", "k3y")
	p := &Probe{URL: "https://api.test/v42/reports/{{id}}.pdf?key={{key}}&page={{page}}&t={{token}}"}
	got, err := p.ShownURL(Vars{"id": "42", "key": "k3y", "page": "42", "token": "tok-alice-0123"}, red)
	if err != nil {
		t.Fatal(err)
	}
	id, key := red.Label("42"), red.Label("k3y")
	if want := "https://api.test/v42/reports/" + id + ".pdf?key=" + key + "&page=" + id + "&t=tok-alice-0123"; got != want {
		t.Errorf("ShownURL = %q, want %q", got, want)
	}
}
