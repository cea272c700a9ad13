package redact

import (
	"errors"
	"io/fs"
	"strings"
	"sync"
	"testing"
)

func TestStringReplacesEverySecret(t *testing.T) {
	var r Redactor
	r.Add("token", "eyJhbGciOiJIUzI1NiJ9.payload.sig")
	r.Add("client-secret", "s3cr3t-value")
	in := "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig; secret=s3cr3t-value; again s3cr3t-value"
	out := r.String(in)
	for _, s := range []string{"eyJhbGciOiJIUzI1NiJ9.payload.sig", "s3cr3t-value"} {
		if strings.Contains(out, s) {
			t.Errorf("%q still in %q", s, out)
		}
	}
	if want := "[token:" + Fingerprint("eyJhbGciOiJIUzI1NiJ9.payload.sig") + "]"; !strings.Contains(out, want) {
		t.Errorf("%q lacks the label %q", out, want)
	}
	if strings.Count(out, "[client-secret:") != 2 {
		t.Errorf("both occurrences of the client secret must be replaced: %q", out)
	}
}

// A secret that contains another must be replaced whole, not leave its remainder behind.
func TestLongestSecretWins(t *testing.T) {
	var r Redactor
	r.Add("password", "hunter2")
	r.Add("token", "abc-hunter2-xyz")
	out := r.String("t=abc-hunter2-xyz p=hunter2")
	if strings.Contains(out, "abc-") || strings.Contains(out, "-xyz") || strings.Contains(out, "hunter2") {
		t.Errorf("partial secret left in %q", out)
	}
}

// A secret shorter than 8 bytes is replaced where it stands as a whole value, whatever its length,
// and left alone where it is part of other text: a report keeps its "42 ms" when an id 42 is a
// secret of the run.
func TestShortSecretsAsWholeValues(t *testing.T) {
	var r Redactor
	r.Add("password", "pw1")
	r.Add("extract", "r2")
	r.Add("extract", "42")
	r.Add("key", "k3y-56")
	pw, r2, n42, key := r.Label("pw1"), r.Label("r2"), r.Label("42"), r.Label("k3y-56")
	for _, tc := range []struct{ in, want string }{
		{"password=pw1", "password=" + pw},
		{"user=bob&password=pw1&next=/", "user=bob&password=" + pw + "&next=/"},
		{`{"password":"pw1"}`, `{"password":"` + pw + `"}`},
		{`{"body":"{\"password\":\"pw1\"}"}`, `{"body":"{\"password\":\"` + pw + `\"}"}`},
		{"password: pw1", "password: " + pw},
		{"pw1", pw},
		{"POST /coupons/r2/redeem?x=1", "POST /coupons/" + r2 + "/redeem?x=1"},
		{"took 42 ms, 1420 requests, 42.5 ms", "took 42 ms, 1420 requests, 42.5 ms"},
		{`{"id":42}`, `{"id":` + n42 + `}`},
		{"pw12 xpw1 pw1x r2d2 /r22", "pw12 xpw1 pw1x r2d2 /r22"},
		{"the answer is pw1", "the answer is pw1"},
		{"X-Key: k3y-56", "X-Key: " + key},
		{"Bearer k3y-56.", "Bearer k3y-56."},
		{"Bearer k3y-56 and k3y-567", "Bearer " + key + " and k3y-567"},
		{pw + " stays", pw + " stays"},
	} {
		if got := r.String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	var nilRedactor *Redactor
	if got := nilRedactor.String("x"); got != "x" {
		t.Errorf("nil redactor changed the text: %q", got)
	}
	nilRedactor.Add("token", "x") // must not panic
}

// A label String wrote is never matched by a short secret that happens to spell part of it.
func TestLabelsAreLeftAlone(t *testing.T) {
	var r Redactor
	r.Add("token", "a-long-token-value")
	label := r.Label("a-long-token-value")
	r.Add("extract", "token")
	r.Add("extract", label[7:11]) // four hex digits of the fingerprint
	if got := r.String("t=a-long-token-value"); got != "t="+label {
		t.Errorf("got %q, want the label unchanged", got)
	}
	if got := r.String(r.String("t=a-long-token-value")); got != "t="+label {
		t.Errorf("redacting twice: %q", got)
	}
}

// A secret is redacted in the forms it takes on the wire, under its own label.
func TestWireForms(t *testing.T) {
	var r Redactor
	secret := `p@ss w&rd"1`
	r.Add("password", secret)
	label := r.Label(secret)
	for _, form := range []string{secret, "p%40ss+w%26rd%221", "p@ss%20w&rd%221", `p@ss w&rd\"1`, `p@ss w\u0026rd\"1`} {
		if got := r.String("x=" + form); got != "x="+label {
			t.Errorf("form %q: got %q", form, got)
		}
	}
}

// A value learned first as something else (a login's response field) is labelled a token once it
// is one: evidence names the token of each request by its label.
func TestTokenKindWins(t *testing.T) {
	var r Redactor
	r.Add("extract", "eyJhbGciOiJIUzI1NiJ9.e30.sig")
	r.Add("token", "eyJhbGciOiJIUzI1NiJ9.e30.sig")
	r.Add("credential", "eyJhbGciOiJIUzI1NiJ9.e30.sig")
	if got, want := r.Label("eyJhbGciOiJIUzI1NiJ9.e30.sig"), "[token:"+Fingerprint("eyJhbGciOiJIUzI1NiJ9.e30.sig")+"]"; got != want {
		t.Errorf("label %q, want %q", got, want)
	}
	if got := r.String("x eyJhbGciOiJIUzI1NiJ9.e30.sig"); !strings.Contains(got, "[token:") {
		t.Errorf("String uses the old label: %q", got)
	}
}

func TestErrorKeepsTheChain(t *testing.T) {
	var r Redactor
	r.Add("token", "tok-123456")
	err := r.Error(&fs.PathError{Op: "open", Path: "tok-123456", Err: fs.ErrNotExist})
	if strings.Contains(err.Error(), "tok-123456") {
		t.Errorf("error message not redacted: %v", err)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("errors.Is lost the cause")
	}
	if r.Error(nil) != nil {
		t.Errorf("Error(nil) must be nil")
	}
}

// Tokens are registered while other goroutines redact reports: the race detector checks this.
func TestConcurrentAddAndString(t *testing.T) {
	var r Redactor
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			r.Add("token", strings.Repeat("x", 8)+string(rune('a'+i)))
		}()
		go func() {
			defer wg.Done()
			_ = r.String("xxxxxxxxa xxxxxxxxb")
		}()
	}
	wg.Wait()
	if strings.Contains(r.String("xxxxxxxxc"), "xxxxxxxxc") {
		t.Errorf("a secret added concurrently was not redacted")
	}
}

// An excerpt is redacted before it is cut, so no cut leaves part of a secret; and a body that was
// itself cut short loses a tail that begins a secret.
func TestExcerpt(t *testing.T) {
	var r Redactor
	secret := "tok-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
	r.Add("token", secret)
	label := "[token:" + Fingerprint(secret) + "]"
	for at := 0; at < 60; at++ {
		body := strings.Repeat("x", at) + secret + strings.Repeat("y", 30)
		got := r.Excerpt([]byte(body), 40, false)
		for n := 8; n <= len(secret); n++ {
			if strings.Contains(got, secret[:n]) || strings.Contains(got, secret[len(secret)-n:]) {
				t.Fatalf("offset %d: excerpt %q holds %d bytes of the secret", at, got, n)
			}
		}
		if len(got) > 43 {
			t.Errorf("offset %d: excerpt %q longer than 40 bytes and the ellipsis", at, got)
		}
	}
	if got := r.Excerpt([]byte("id=1 "+secret), 200, false); got != "id=1 "+label {
		t.Errorf("whole secret: %q", got)
	}
	for n := 1; n < len(secret); n++ {
		got := r.Excerpt([]byte("token is "+secret[:n]), 200, true)
		if got != "token is [cut]" {
			t.Errorf("cut after %d bytes of the secret: %q", n, got)
		}
	}
	if got := r.Excerpt([]byte("ends with tok"), 200, false); got != "ends with tok" {
		t.Errorf("a body that was not cut keeps its end: %q", got)
	}
	r.Add("password", "pw1")
	if got := r.Excerpt([]byte(`{"password":"p`), 200, true); got != `{"password":"[cut]` {
		t.Errorf("cut inside a short secret: %q", got)
	}
	if got := r.Excerpt([]byte(`{"n":12, "up`), 200, true); got != `{"n":12, "up` {
		t.Errorf("a tail that does not stand where a short secret would was dropped: %q", got)
	}
}
