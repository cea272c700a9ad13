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
