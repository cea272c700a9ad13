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

func TestShortValuesAreNotSecrets(t *testing.T) {
	var r Redactor
	r.Add("password", "a")
	if got := r.String("a banana"); got != "a banana" {
		t.Errorf("a one-letter value was redacted: %q", got)
	}
	var nilRedactor *Redactor
	if got := nilRedactor.String("x"); got != "x" {
		t.Errorf("nil redactor changed the text: %q", got)
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
}
