//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/hostile"
	"github.com/tocsin/tocsin/internal/report"
)

// The tests in this file run the real binary, as a user would, against hostile inputs and targets
// (issue 12), and hold each run to a time and a memory ceiling. The child runs under ulimit -v, so
// that a regression fails on the ceiling instead of taking the machine's memory; the ceiling itself
// is the child's peak resident memory, which the kernel reports when it exits.
const (
	virtualLimitKB = 2 << 20 // ulimit -v: 2 GiB of address space, a safety net
	peakCeilingKB  = 160 << 10
)

// buildTocsin builds this command into a temporary directory (the build cache makes it quick after
// the first time).
func buildTocsin(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash is needed for ulimit")
	}
	bin := filepath.Join(t.TempDir(), "tocsin")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// bounded is one run of the binary.
type bounded struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
	peakKB         int64
}

// runBounded runs bin with args under ulimit -v, killing it after hardLimit.
func runBounded(t *testing.T, bin string, hardLimit time.Duration, env []string, args ...string) bounded {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hardLimit)
	defer cancel()
	script := fmt.Sprintf(`ulimit -v %d && exec "$0" "$@"`, virtualLimitKB)
	cmd := exec.CommandContext(ctx, "bash", append([]string{"-c", script, bin}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := bounded{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("run: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("still running after %v, killed\nstderr: %s", hardLimit, tail(r.stderr))
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.peakKB = ru.Maxrss // KB on Linux
	}
	return r
}

func tail(s string) string {
	if len(s) > 2000 {
		return "..." + s[len(s)-2000:]
	}
	return s
}

// checkCeilings fails the test when a run took longer than maxTime or more memory than the ceiling.
func checkCeilings(t *testing.T, r bounded, maxTime time.Duration) {
	t.Helper()
	if r.elapsed > maxTime {
		t.Errorf("took %v, want under %v", r.elapsed.Round(time.Millisecond), maxTime)
	}
	if r.peakKB == 0 || r.peakKB > peakCeilingKB {
		t.Errorf("peak memory %d MB, want under %d MB", r.peakKB>>10, peakCeilingKB>>10)
	}
}

// Config and report files that once took tocsin to gigabytes or to a stack overflow are refused at
// once, with exit status 2 and a message that says why.
func TestHostileFilesRefused(t *testing.T) {
	bin := buildTocsin(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var keys bytes.Buffer
	for i := range 100_000 {
		fmt.Fprintf(&keys, "k%06d: v\n", i)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"400 KB of [", []string{"scan", "-c", write("brackets.yaml", bytes.Repeat([]byte("["), 400_000))}, "brackets.yaml:1: nests deeper than 64 levels (hint: "},
		{"200 KB of {a:", []string{"scan", "-c", write("braces.yaml", bytes.Repeat([]byte("{a: "), 50_000))}, "nests deeper than 64 levels (hint: "},
		{"100k keys", []string{"scan", "-c", write("keys.yaml", keys.Bytes())}, "more than 10000 keys, list items and flow collections (hint: "},
		{"-c /dev/zero", []string{"scan", "-c", "/dev/zero"}, "error: config: /dev/zero is larger than 4 MiB (hint: "},
		{"-c /dev/urandom", []string{"scan", "-c", "/dev/urandom"}, "error: config: /dev/urandom is larger than 4 MiB (hint: "},
		{"report -i /dev/zero", []string{"report", "-i", "/dev/zero"}, "error: read report: /dev/zero is larger than 4 MiB (hint: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runBounded(t, bin, 30*time.Second, nil, tc.args...)
			if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 2 and %q", r.code, tail(r.stderr), tc.want)
			}
			checkCeilings(t, r, 5*time.Second)
		})
	}
}

// scanConfig is a scan of a one-shot action on srv: a setup that creates a resource (POST /coupons),
// the action on it, and race/limit-overrun, which sends the action in sequence against the first
// resource (r1) and as a synchronised race against the second (r2). So a misbehaviour at /coupons
// meets the ordinary HTTP client and one at /coupons/r2/redeem the race engine. Both secrets come
// from the environment, as a user would write them. The timeout leaves room for the race's 20 copies
// to read an endless body up to the default 1 MiB each on a busy machine; a stall costs one timeout.
const scanConfig = `version: 1
target:
  origins: [%s]
limits:
  timeout: 5s
  request_budget: 200
identities:
  alice:
    token:
      static: ${HOSTILE_TOKEN}
probes:
  redeem:
    method: POST
    path: /coupons/{{coupon_id}}/redeem
    destructive: true
    headers: {X-Api-Key: "${HOSTILE_API_KEY}"}
    accept: [200]
    reject: [401, 403, 409]
    setup:
      method: POST
      path: /coupons
      headers: {X-Api-Key: "${HOSTILE_API_KEY}"}
      accept: [201]
      extract: {coupon_id: id}
checks:
  race/limit-overrun:
    identity: alice
    probes: [redeem]
`

// A scan of a misbehaving target ends within its ceilings, never contacts the origin a redirect
// points to, prints no secret of its config, and exits as docs/ci.md says. A misbehaviour at the
// setup stops the check with an error: the scan is incomplete (2). One at the race leaves the race
// unobserved, so the check is inconclusive: the scan is complete but ungraded (2). Two modes at the
// race answer 200 to every copy, an endless body's status line included, where the sequential
// baseline on r1 got one 200: the race overran the limit, a proven finding (1).
func TestScanHostileTargets(t *testing.T) {
	bin := buildTocsin(t)
	secrets := map[string]string{
		"HOSTILE_TOKEN":   "tok-Hostile-Token-9f8e7d6c5b4a",
		"HOSTILE_API_KEY": "key-Hostile-Header-1a2b3c4d5e6f",
	}
	env := environ(secrets)
	const setupPath, racePath = "/coupons", "/coupons/r2/redeem"
	// What each run must end in: the exit status, the JSON report's status, and the check's.
	type outcome struct {
		code          int
		status, check string
	}
	var (
		errored      = outcome{2, report.StatusIncomplete, report.StatusError}
		inconclusive = outcome{2, report.StatusComplete, report.StatusInconclusive}
		overrun      = outcome{1, report.StatusComplete, report.StatusFailed}
	)
	for _, tc := range []struct {
		path string
		mode hostile.Mode
		want outcome
	}{
		{setupPath, hostile.EndlessHeaders, errored},
		{racePath, hostile.EndlessHeaders, inconclusive},
		{setupPath, hostile.EndlessBody, errored},
		{racePath, hostile.EndlessBody, overrun}, // 200 then a body cut at max_response_bytes
		{setupPath, hostile.StallAfterHeaders, errored},
		{racePath, hostile.StallAfterHeaders, inconclusive},
		{setupPath, hostile.Reset, errored},
		{racePath, hostile.Reset, inconclusive},
		{setupPath, hostile.RedirectOffOrigin, errored},
		{racePath, hostile.RedirectOffOrigin, inconclusive},
		{setupPath, hostile.TooManyRequests, errored},
		{racePath, hostile.TooManyRequests, inconclusive},
		{setupPath, hostile.Echo, errored}, // 200 where the setup accepts 201
		{racePath, hostile.Echo, overrun},
		{setupPath, hostile.EchoError, errored},
	} {
		where := "client"
		if tc.path == racePath {
			where = "race"
		}
		t.Run(fmt.Sprintf("%s/%s", tc.mode, where), func(t *testing.T) {
			srv := hostile.Start(t, hostile.Options{Paths: map[string]hostile.Mode{
				setupPath:            hostile.Create,
				"/coupons/r1/redeem": hostile.OneShot,
			}})
			srv.Set(tc.path, tc.mode)
			dir := t.TempDir()
			cfg, out := filepath.Join(dir, "hostile.yaml"), filepath.Join(dir, "report.json")
			if err := os.WriteFile(cfg, fmt.Appendf(nil, scanConfig, srv.URL()), 0o600); err != nil {
				t.Fatal(err)
			}
			r := runBounded(t, bin, 60*time.Second, env, "scan", "-c", cfg, "--format", "json", "-o", out)
			checkCeilings(t, r, 15*time.Second)
			if srv.Requests(tc.path) == 0 {
				t.Errorf("the scan never reached %s (exit %d):\n%s", tc.path, r.code, tail(r.stderr))
			}
			if n := srv.DecoyConnections(); n != 0 {
				t.Errorf("the origin a redirect pointed to got %d connections", n)
			}
			rep := readReport(t, out)
			if got := (outcome{r.code, rep.Status, checkStatus(rep, "race/limit-overrun")}); got != tc.want {
				t.Errorf("exit %d, report status %q, check %q; want exit %d, %q, %q\n%s", got.code, got.status, got.check,
					tc.want.code, tc.want.status, tc.want.check, tail(r.stdout))
			}
			if graded := rep.Grade != ""; graded != (tc.want.code == 1) {
				t.Errorf("report grade %q: a scan with a check that did not decide must have none, a complete one must", rep.Grade)
			}
			shown := r.stdout + r.stderr + rep.raw
			for name, secret := range secrets {
				if part := shownPart(shown, secret); part != "" {
					t.Errorf("output holds %q, part of %s:\n%s", part, name, tail(shown))
				}
			}
			if tc.mode == hostile.RedirectOffOrigin && where == "client" {
				want := "a redirect to " + srv.DecoyURL() + setupPath + ", not followed"
				if !strings.Contains(shown, want) || strings.Contains(shown, hostile.DecoyQuery) {
					t.Errorf("output does not name the Location without its query (%q):\n%s", want, tail(shown))
				}
			}
		})
	}
}

// jsonReport is what the tests read of a JSON report, and the report itself as written.
type jsonReport struct {
	Status string `json:"status"`
	Grade  string `json:"grade"`
	Checks []struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"checks"`
	RestoreFailures []struct {
		Identity string `json:"identity"`
		Error    string `json:"error"`
	} `json:"restore_failures"`
	raw string
}

// readReport reads the JSON report a run wrote to path.
func readReport(t *testing.T, path string) jsonReport {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the JSON report: %v", err)
	}
	r := jsonReport{raw: string(data)}
	if err := json.Unmarshal(data, &r); err != nil {
		t.Fatalf("the JSON report: %v", err)
	}
	return r
}

// checkStatus is the status of check id in r, "" when r does not list it.
func checkStatus(r jsonReport, id string) string {
	for _, c := range r.Checks {
		if c.ID == id {
			return c.Status
		}
	}
	return ""
}

// restoreConfig is a scan of toctou/scope-downgrade-ignored on srv (%[1]s, its origin): alice logs
// in at /login, her token reads /reports (hostile.Guarded), and her downgrade and restore hooks are
// requests to /downgrade and /restore that carry an admin key from the environment. The API never
// learns of the downgrade, so the control (a token minted after it must be refused) fails: the
// check cannot decide, whatever the restore does.
const restoreConfig = `version: 1
target:
  origins: [%[1]s]
limits:
  timeout: 2s
  max_window: 1s
identities:
  alice:
    token:
      http:
        method: POST
        path: /login
        extract: {token: token, expires_in: expires_in}
    downgrade:
      removes: [reports:read]
      http:
        method: PUT
        url: %[1]s/downgrade
        headers: {Authorization: "Bearer ${HOSTILE_ADMIN_KEY}"}
    restore:
      http:
        method: PUT
        url: %[1]s/restore
        headers: {Authorization: "Bearer ${HOSTILE_ADMIN_KEY}"}
probes:
  read-report:
    path: /reports
    accept: [200]
    reject: [401, 403]
checks:
  toctou/scope-downgrade-ignored:
    identity: alice
    probes: [read-report]
`

// A downgrade that succeeds and a restore that keeps failing (a 500 that echoes the request, with the
// admin key in it, or a stall) leave alice downgraded: the scan must say so on standard error even
// with -q, and in its report, with the request to run by hand and without the key, and exit 2. It retries the
// restore for its full minute (restoreFor in internal/check; a built binary has no knob to shorten
// it), so each run takes a little over a minute, mostly asleep; the two run side by side.
func TestHostileRestoreFails(t *testing.T) {
	if testing.Short() {
		t.Skip("retries a failing restore for a minute")
	}
	bin := buildTocsin(t)
	const adminKey = "adm-Hostile-Admin-7c6b5a4f3e2d"
	env := environ(map[string]string{"HOSTILE_ADMIN_KEY": adminKey})
	for _, mode := range []hostile.Mode{hostile.EchoError, hostile.StallAfterHeaders} {
		t.Run(mode.String(), func(t *testing.T) {
			t.Parallel()
			srv := hostile.Start(t, hostile.Options{Paths: map[string]hostile.Mode{
				"/login":     hostile.Login,
				"/reports":   hostile.Guarded,
				"/downgrade": hostile.OK,
				"/restore":   mode,
			}})
			dir := t.TempDir()
			cfg, out := filepath.Join(dir, "restore.yaml"), filepath.Join(dir, "report.json")
			if err := os.WriteFile(cfg, fmt.Appendf(nil, restoreConfig, srv.URL()), 0o600); err != nil {
				t.Fatal(err)
			}
			r := runBounded(t, bin, 3*time.Minute, env, "scan", "-q", "-c", cfg, "--format", "json", "-o", out)
			t.Logf("exit %d after %v, %d restore attempts", r.code, r.elapsed.Round(time.Millisecond), srv.Requests("/restore"))
			checkCeilings(t, r, 2*time.Minute)
			if n := srv.Requests("/downgrade"); n == 0 {
				t.Fatalf("the downgrade was never sent (exit %d):\n%s", r.code, tail(r.stdout+r.stderr))
			}
			if n := srv.Requests("/restore"); n < 2 {
				t.Errorf("the restore was sent %d times; want it retried", n)
			}
			manual := "restore it by hand: curl -sS -X PUT " + srv.URL() + "/restore"
			if r.code != 2 || !strings.Contains(r.stderr, `RESTORE FAILED: identity "alice"`) || !strings.Contains(r.stderr, manual) {
				t.Errorf("exit %d, stderr:\n%s\nwant exit 2, RESTORE FAILED for alice and %q", r.code, tail(r.stderr), manual)
			}
			rep := readReport(t, out)
			if rep.Status != report.StatusIncomplete || rep.Grade != "" || len(rep.RestoreFailures) != 1 || rep.RestoreFailures[0].Identity != "alice" {
				t.Errorf("report status %q, grade %q, restore failures %+v; want incomplete, ungraded, alice's", rep.Status, rep.Grade, rep.RestoreFailures)
			}
			if got := checkStatus(rep, "toctou/scope-downgrade-ignored"); got != report.StatusInconclusive {
				t.Errorf("check status %q; want inconclusive (the API never learns of the downgrade)", got)
			}
			shown := r.stdout + r.stderr + rep.raw
			if part := shownPart(shown, adminKey); part != "" {
				t.Errorf("output holds %q, part of the admin key:\n%s", part, tail(shown))
			}
		})
	}
}
