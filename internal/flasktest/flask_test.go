//go:build unix

package flasktest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/redact"
	"github.com/tocsin/tocsin/internal/report"
	"github.com/tocsin/tocsin/internal/scan"
	"github.com/tocsin/tocsin/internal/target"
	"github.com/tocsin/tocsin/internal/testenv"
)

const (
	// python is Debian's interpreter, which has python3-flask and python3-jwt; the python3 first on
	// PATH may be another installation without them.
	python      = "/usr/bin/python3"
	installHint = "apt-get install python3-flask python3-jwt"

	checkRevoked   = "toctou/revoked-token-accepted"
	checkDowngrade = "toctou/scope-downgrade-ignored"
	checkInflight  = "toctou/inflight-revocation"

	checkBOLA           = "authz/bola"
	checkBFLA           = "authz/bfla"
	checkMassAssignment = "authz/mass-assignment"

	// actionGap is app.py's default pause inside DELETE (FLASK_ACTION_GAP), which these tests keep.
	actionGap = 150 * time.Millisecond
)

var (
	// The checks tocsin.yaml lists: those of the seed's TOCTOU flaws, those of credentials the API
	// should refuse (auth/missing and the jwt/* checks, in the order the scan runs them), and those
	// between accounts.
	toctouChecks     = []string{checkRevoked, checkDowngrade, checkInflight}
	credentialChecks = []string{"auth/missing", "jwt/none-algorithm", "jwt/signature-not-verified", "jwt/embedded-key", "jwt/weak-hmac-secret", "jwt/algorithm-confusion", "jwt/expired-accepted"}
	authzChecks      = []string{checkBOLA, checkBFLA, checkMassAssignment}

	appDir     = filepath.Join("..", "..", "testdata", "flask-api")
	configFile = filepath.Join(appDir, "tocsin.yaml")
)

// The seed's patterns, with caches short enough to keep the scan to a few seconds.
func TestVulnerableFlaskYieldsOneFindingPerCheck(t *testing.T) {
	ttl := 500 * time.Millisecond
	app := startFlask(t, map[string]string{
		"FLASK_MODE":              "vulnerable",
		"FLASK_INTROSPECTION_TTL": seconds(ttl),
		"FLASK_PERMISSION_TTL":    seconds(ttl),
	})
	checks := slices.Concat(toctouChecks, credentialChecks)
	rep := scanFlask(t, app, checks...)

	byCheck := findingsByCheck(rep)
	for _, id := range []string{checkRevoked, checkDowngrade, checkInflight} {
		if n := len(byCheck[id]); n != 1 {
			t.Errorf("%s: %d findings, want 1", id, n)
		}
	}
	if len(rep.Findings) != 3+len(wantForged) {
		t.Fatalf("%d findings, want %d (one per check, one per credential auth/missing sent): %s", len(rep.Findings), 3+len(wantForged), summaries(rep))
	}
	assertStatuses(t, rep, checks, report.StatusFailed)
	assertForged(t, byCheck)

	revoked := byCheck[checkRevoked][0]
	assertWindowContainsTTL(t, revoked, "revocation", ttl)
	downgraded := byCheck[checkDowngrade][0]
	assertWindowContainsTTL(t, downgraded, "downgrade", ttl)
	// The introspection cache also accepts a token revoked before the DELETE is sent, which the
	// check's control attempt notices.
	assertInflight(t, byCheck[checkInflight][0], false)
}

// wantForged is, for each finding of auth/missing and the jwt/* checks on the vulnerable app, what it
// accepted in place of the identity's token: each route's flaw lets through exactly these.
var wantForged = [][2]string{
	{"auth/missing", "no credentials"},
	{"auth/missing", "a malformed bearer token"},
	{"auth/missing", "a token no issuer made"},
	{"jwt/none-algorithm", `alg "none", no signature; alg "None", no signature; alg "NONE", no signature; alg "none", no signature, claiming bob`},
	{"jwt/signature-not-verified", "payload changed, original signature kept; signature removed; signature corrupted; payload changed, original signature kept, claiming bob"},
	{"jwt/embedded-key", "ES256 with tocsin's key in the jwk header; RS256 with tocsin's key in the jwk header; ES256 with tocsin's key in the jwk header, claiming bob"},
	{"jwt/weak-hmac-secret", "HS256 re-signed with the secret found"},
	{"jwt/algorithm-confusion", "HS256 keyed with the public key as DER (SubjectPublicKeyInfo)"},
	{"jwt/expired-accepted", "forged with exp an hour ago"},
}

func assertForged(t *testing.T, byCheck map[string][]finding.Finding) {
	t.Helper()
	var got [][2]string
	for _, id := range credentialChecks {
		for _, f := range byCheck[id] {
			var accepted []string
			for _, fg := range f.Forged {
				if fg.Outcome == "accepted" {
					accepted = append(accepted, fg.Variant)
				}
			}
			got = append(got, [2]string{id, strings.Join(accepted, "; ")})
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(wantForged) {
		t.Errorf("accepted in place of the token:\n got %q\nwant %q", got, wantForged)
	}
	if w := byCheck["jwt/weak-hmac-secret"]; len(w) == 1 && !strings.Contains(w[0].Summary, "from the built-in list, entry 6") {
		t.Errorf("weak secret summary %q: the seed's your-secret is entry 6 of the built-in list", w[0].Summary)
	}
}

// With both caches off, what is left is the seed's DELETE alone: a revoked token is refused by
// every new request, so only the in-flight check finds something, and its control attempt (revoke,
// then send the DELETE) is refused.
func TestFlaskSeedDeleteWithoutCaches(t *testing.T) {
	app := startFlask(t, map[string]string{
		"FLASK_MODE":              "vulnerable",
		"FLASK_INTROSPECTION_TTL": "0",
		"FLASK_PERMISSION_TTL":    "0",
	})
	rep := scanFlask(t, app, toctouChecks...)
	if len(rep.Findings) != 1 || rep.Findings[0].Check != checkInflight {
		t.Fatalf("want exactly one %s finding, got: %s", checkInflight, summaries(rep))
	}
	assertInflight(t, rep.Findings[0], true)
	for _, c := range rep.Checks {
		if want := statusFor(c.ID == checkInflight); c.Status != want {
			t.Errorf("%s: status %s (%s), want %s", c.ID, c.Status, c.Reason, want)
		}
	}
}

// The fixed mode re-checks at the moment of use, and revocation and scope changes wait for an
// in-flight DELETE: nothing to find, and every check ran to the end.
func TestFixedFlaskYieldsNothing(t *testing.T) {
	app := startFlask(t, map[string]string{"FLASK_MODE": "fixed"})
	checks := slices.Concat(toctouChecks, credentialChecks)
	rep := scanFlask(t, app, checks...)
	if len(rep.Findings) != 0 {
		t.Errorf("%d findings, want none: %s", len(rep.Findings), summaries(rep))
	}
	assertStatuses(t, rep, checks, report.StatusPassed)
}

func statusFor(found bool) string {
	if found {
		return report.StatusFailed
	}
	return report.StatusPassed
}

// assertStatuses checks that every check the scan was given ran and ended with want; a skipped or
// failed-to-run check would otherwise pass a "no findings" test.
func assertStatuses(t *testing.T, rep *report.Report, checks []string, want string) {
	t.Helper()
	if len(rep.LeftOnTarget) > 0 || !rep.Complete() {
		t.Errorf("status %s, left on the target %+v: want a complete scan that removed what it created", rep.Status, rep.LeftOnTarget)
	}
	var ran []string
	for _, c := range rep.Checks {
		ran = append(ran, c.ID)
	}
	if !slices.Equal(slices.Sorted(slices.Values(ran)), slices.Sorted(slices.Values(checks))) {
		t.Errorf("%d checks ran (%v), want the %d the scan was given: %v", len(ran), ran, len(checks), checks)
	}
	for _, c := range rep.Checks {
		if c.Status != want {
			t.Errorf("%s: status %s (%s), want %s", c.ID, c.Status, c.Reason, want)
		}
	}
}

// windowSlack is how far the bracket may sit from the TTL. The window is named a lifetime from the
// first use and bracketed in that frame; counted from anywhere in the first use's round trip (the
// first-use frame) it holds the TTL exactly, but a frame that singles out the first use's send or
// answer assumes the app's own clock read lies within 0.5 ms of it, and werkzeug's threaded server
// on a loaded machine can be several milliseconds late. A real bug moves the bracket much further: a
// cache refreshed on hits never closes, a fill taken from the wrong request shifts it by a pass's
// length (tens to hundreds of ms).
const windowSlack = 20.0 // ms

// maxBracketWidth: the check aims at 8 ms; Python's latency jitter can leave it wider after its
// passes. Still far narrower than the 500 ms TTL it measures.
const maxBracketWidth = 30.0 // ms

// assertWindowContainsTTL checks that the window is named a lifetime from the first use and that its
// bracket, in that frame, contains the app's cache TTL.
func assertWindowContainsTTL(t *testing.T, f finding.Finding, change string, ttl time.Duration) {
	t.Helper()
	w := f.Window
	if w == nil || w.Never || w.Bracket == nil || !w.Bracket.Closed() {
		t.Fatalf("%s: window %+v, want a closed bracket", f.Check, w)
	}
	if w.Change != change || f.Identity != "alice" {
		t.Errorf("%s: change %q identity %q, want %q and alice", f.Check, w.Change, f.Identity, change)
	}
	if w.Cause != finding.CauseLifetime {
		t.Errorf("%s: cause %q (%s), want %s", f.Check, w.Cause, w.CauseReason, finding.CauseLifetime)
	}
	lo, hi := w.Bracket.LoMS, w.Bracket.Hi()
	want := float64(ttl.Milliseconds())
	t.Logf("%s: %s %s %s (pass %d of %d), [%.1f, %.1f] ms after the %s was acknowledged in that pass, %d requests",
		f.Check, w.Parameter, w.Bracket, finding.DescribeFrame(w.Frame, change), w.BracketPass, len(w.Passes), w.LastAcceptedMS, w.FirstRejectedMS, change, f.Requests)
	if lo-windowSlack > want || hi+windowSlack < want {
		t.Errorf("%s: bracket [%.1f, %.1f] ms in frame %s does not contain the TTL %.0f ms within %.0f ms (window %+v)", f.Check, lo, hi, w.Frame, want, windowSlack, w)
	}
	if w.LastAcceptedMS > w.FirstRejectedMS {
		t.Errorf("%s: inverted bracket %+v", f.Check, w)
	}
	if w.Bracket.Width() > maxBracketWidth {
		t.Errorf("%s: bracket width %.1f ms, want <= %.0f", f.Check, w.Bracket.Width(), maxBracketWidth)
	}
}

// assertInflight checks the finding against the observed-after-revocation oracle (DESIGN.md): the
// revocation was acknowledged, then a read by bob still found the item, then the DELETE answered
// success, then the item was gone.
func assertInflight(t *testing.T, f finding.Finding, refusedAfterRevocation bool) {
	t.Helper()
	if f.Check != checkInflight || f.Identity != "alice" || f.Probe != "delete-item" || f.Endpoint != "DELETE /items/{{item_id}}" {
		t.Errorf("unexpected finding: check %q identity %q probe %q endpoint %q", f.Check, f.Identity, f.Probe, f.Endpoint)
	}
	if f.Severity < finding.High {
		t.Errorf("severity %s for a destructive action committed after revocation, want at least high", f.Severity)
	}
	in := f.Inflight
	if in == nil {
		t.Fatalf("no in-flight figures: %+v", f)
	}
	t.Logf("%s: revocation acknowledged %.1f ms after the DELETE was sent, read still found the item at %.1f ms, DELETE answered 204 at %.1f ms (latency %.1f ms, offsets hit %v of %v, %d attempts, %d requests)",
		f.Check, in.AckMS, in.VerifyMS, in.AnsweredMS, in.ActionLatencyMS, in.RevokeOffsetsHitMS, in.RevokeOffsetsTriedMS, in.Attempts, f.Requests)
	if !(in.AckMS < in.VerifyMS && in.VerifyMS < in.AnsweredMS) {
		t.Errorf("timeline out of the oracle's order: ack %.1f, verify sent %.1f, action answered %.1f ms (want ack < verify < answer)", in.AckMS, in.VerifyMS, in.AnsweredMS)
	}
	// The DELETE sleeps actionGap before it deletes, so it cannot answer sooner; much later would
	// mean the latency runs measured something else.
	gapMS := float64(actionGap.Milliseconds())
	if in.ActionLatencyMS < gapMS || in.ActionLatencyMS > gapMS+250 || in.AnsweredMS < gapMS {
		t.Errorf("DELETE latency %.1f ms, answered at %.1f ms; app.py's gap is %.0f ms", in.ActionLatencyMS, in.AnsweredMS, gapMS)
	}
	if in.RefusedAfterRevocation != refusedAfterRevocation {
		t.Errorf("control attempt (revoke, then DELETE) refused = %v, want %v", in.RefusedAfterRevocation, refusedAfterRevocation)
	}

	// The evidence shows the same order, with every token redacted.
	var ackAt, stillThereAt, answeredAt, goneAt *float64
	for _, e := range f.Evidence {
		at := e.AtMS
		switch {
		case e.Kind == finding.EventChangeAcked:
			ackAt = &at
		case e.Kind == finding.EventVerify && e.HTTP != nil && e.HTTP.Status == 200:
			stillThereAt = &at
		case e.Kind == finding.EventAnswered:
			answeredAt = &at
		case e.Kind == finding.EventVerify && e.HTTP != nil && e.HTTP.Status == 404:
			goneAt = &at
		}
		switch {
		case e.HTTP == nil:
		case e.Kind == finding.EventControl:
			// The controls carry no token or a garbage one, shown as such: nothing of alice's.
			if e.HTTP.Token != "" && e.HTTP.Token != "[garbage token]" {
				t.Errorf("control's token shown as %q, want none or [garbage token]", e.HTTP.Token)
			}
		case !strings.HasPrefix(e.HTTP.Token, "[token:"):
			t.Errorf("evidence token not redacted: %q", e.HTTP.Token)
		}
	}
	if ackAt == nil || stillThereAt == nil || answeredAt == nil || goneAt == nil {
		t.Fatalf("evidence lacks the acknowledgement, the read that still found the item, the answer or the read that found it gone: %+v", f.Evidence)
	}
	if !(*ackAt < *stillThereAt && *stillThereAt < *answeredAt && *answeredAt < *goneAt) {
		t.Errorf("evidence out of order: ack %.1f, still there %.1f, answered %.1f, gone %.1f ms", *ackAt, *stillThereAt, *answeredAt, *goneAt)
	}
}

func findingsByCheck(rep *report.Report) map[string][]finding.Finding {
	out := map[string][]finding.Finding{}
	for _, f := range rep.Findings {
		out[f.Check] = append(out[f.Check], f)
	}
	return out
}

func summaries(rep *report.Report) string {
	var b strings.Builder
	for _, f := range rep.Findings {
		fmt.Fprintf(&b, "\n  %s: %s", f.Check, f.Summary)
	}
	for _, c := range rep.Checks {
		fmt.Fprintf(&b, "\n  check %s: %s %s", c.ID, c.Status, c.Reason)
	}
	return b.String()
}

// scanFlask scans the app from testdata/flask-api/tocsin.yaml, as `tocsin scan -c` would, and checks
// that the report holds no secret.
func scanFlask(t testing.TB, app *flaskApp, only ...string) *report.Report {
	t.Helper()
	data, err := os.ReadFile(configFile)
	if err != nil {
		t.Fatal(err)
	}
	return scanFlaskWith(t, app, data, only...)
}

// scanFlaskWith scans the app with a config given as YAML, named as tocsin.yaml.
func scanFlaskWith(t testing.TB, app *flaskApp, data []byte, only ...string) *report.Report {
	t.Helper()
	cfg, err := config.Parse(configFile, data, func(name string) (string, bool) {
		v, ok := app.env[name]
		return v, ok
	})
	if err != nil {
		t.Fatalf("parse %s: %v", configFile, err)
	}
	// Generous, so that a slow run cannot turn a 0.5 s window into "never refused".
	cfg.Limits.MaxWindow = 15 * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tgt, err := target.Build(ctx, cfg, &redact.Redactor{})
	if err != nil {
		t.Fatalf("build target: %v", err)
	}
	start := time.Now()
	// A benchmark prints what it logs, every scan of it: it logs nothing.
	logf := t.Logf
	if _, bench := t.(*testing.B); bench {
		logf = func(string, ...any) {}
	}
	rep, err := scan.Run(ctx, tgt, scan.Options{Name: "flask-api", Only: only, Progress: func(msg string) { logf("%s", msg) }})
	if err != nil {
		t.Fatalf("scan: %v", err)
	}
	logf("scan took %.2f s, %d requests, %d findings", time.Since(start).Seconds(), rep.Requests, len(rep.Findings))

	out, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	// PyJWT's tokens start with the base64 of `{"`: eyJ. None may reach a report, nor any secret.
	for _, secret := range []string{"eyJ", app.env["FLASK_CLIENT_SECRET"], app.env["FLASK_ADMIN_KEY"], "alice-password", "bob-password", "your-secret"} {
		if bytes.Contains(out, []byte(secret)) {
			t.Errorf("the JSON report contains %q", secret)
		}
	}
	return rep
}

// flaskApp is a running app.py.
type flaskApp struct {
	origin string
	env    map[string]string // what tocsin.yaml refers to: FLASK_ORIGIN and the app's secrets
}

// startFlask runs app.py with settings (FLASK_* variables) and fresh secrets on a free loopback
// port, and stops it when the test ends.
func startFlask(t testing.TB, settings map[string]string) *flaskApp {
	t.Helper()
	py := testenv.LookPath(t, installHint, python)
	env := childEnv(settings)
	if out, err := runWithEnv(env, py, "-c", "import flask, jwt"); err != nil {
		t.Logf("%s -c 'import flask, jwt': %v\n%s", py, err, out)
		testenv.Missing(t, "python3-flask/python3-jwt", installHint)
	}
	secrets := map[string]string{"FLASK_CLIENT_SECRET": rand.Text(), "FLASK_ADMIN_KEY": rand.Text()}
	for k, v := range secrets {
		env = append(env, k+"="+v)
	}

	cmd := exec.Command(py, filepath.Join(appDir, "app.py"), "--port", "0")
	cmd.Env = env
	// Its own process group, so that cleanup kills whatever it started with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd, err)
	}
	lines := make(chan string, 1)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		lines <- line
		io.Copy(io.Discard, r) // nothing else is expected; never let the app block on a full pipe
	}()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-drained // Wait must not run before the pipe's reader is done
		cmd.Wait()
		if t.Failed() {
			t.Logf("app.py stderr:\n%s", stderr.String())
		}
	})

	var line string
	select {
	case line = <-lines:
	case <-time.After(30 * time.Second):
		t.Fatalf("app.py printed no LISTENING line in 30 s; stderr:\n%s", stderr.String())
	}
	origin, ok := strings.CutPrefix(strings.TrimSpace(line), "LISTENING ")
	if !ok || !strings.HasPrefix(origin, "http://127.0.0.1:") {
		t.Fatalf("app.py's first line is %q, want LISTENING http://127.0.0.1:PORT; stderr:\n%s", line, stderr.String())
	}
	secrets["FLASK_ORIGIN"] = origin
	return &flaskApp{origin: origin, env: secrets}
}

// childEnv is this process's environment without anything that would change how app.py runs
// (FLASK_* settings, another Python's PYTHONHOME or PYTHONPATH), plus settings.
func childEnv(settings map[string]string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "FLASK_") || name == "PYTHONHOME" || name == "PYTHONPATH" {
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "PYTHONDONTWRITEBYTECODE=1")
	for k, v := range settings {
		env = append(env, k+"="+v)
	}
	return env
}

func runWithEnv(env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	return cmd.CombinedOutput()
}

func seconds(d time.Duration) string { return fmt.Sprintf("%g", d.Seconds()) }

// lockedBuffer collects the app's stderr, written by exec's copying goroutine and read by the test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// BenchmarkFixedFlaskInflightFalsePositives counts in-flight findings on the fixed Flask app, which
// must have none; the issue asks for 0 over 100 scans:
// go test -run '^$' -bench FixedFlaskInflight -benchtime 100x ./internal/flasktest/
// A 5 ms gap keeps each scan short and the revocation right against the action.
func BenchmarkFixedFlaskInflightFalsePositives(b *testing.B) {
	app := startFlask(b, map[string]string{"FLASK_MODE": "fixed", "FLASK_ACTION_GAP": "0.005"})
	var falsePositives float64
	for b.Loop() {
		falsePositives += float64(len(scanFlask(b, app, "toctou/inflight-revocation").Findings))
	}
	b.ReportMetric(falsePositives, "false-positives")
	b.ReportMetric(float64(b.N), "scans")
	b.ReportMetric(0, "ns/op")
	if falsePositives > 0 {
		b.Errorf("%v in-flight findings on the fixed Flask app", falsePositives)
	}
}
