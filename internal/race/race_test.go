package race_test

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/race"
	"github.com/tocsin/tocsin/internal/redact"
)

// echo answers "METHOD PATH AUTH BODY", so each response can be matched to the request it answers.
func echo(hits *atomic.Int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits != nil {
			hits.Add(1)
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Proto", r.Proto)
		fmt.Fprintf(w, "%s %s %s %s", r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), body)
	})
}

func newClient(t *testing.T, origin string, budget int) *client.Client {
	t.Helper()
	c, err := client.New(client.Options{Origins: []string{origin}, Budget: budget, Rate: 1e6, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// batch makes n requests alternating a POST with a body and a GET, each with its own token.
func batch(base string, n int) []race.Request {
	reqs := make([]race.Request, n)
	for i := range reqs {
		h := http.Header{"Authorization": {fmt.Sprintf("Bearer tok%d", i)}}
		if i%2 == 0 {
			reqs[i] = race.Request{Method: "POST", URL: fmt.Sprintf("%s/redeem/%d?x=1", base, i), Header: h, Body: []byte(fmt.Sprintf(`{"n":%d}`, i))}
		} else {
			reqs[i] = race.Request{URL: fmt.Sprintf("%s/items/%d", base, i), Header: h}
		}
	}
	return reqs
}

func send(t *testing.T, o race.Options, reqs []race.Request) *race.Batch {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := race.Send(ctx, o, reqs)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	return b
}

// assertAnswers checks that every response is the echo of its own request, over the expected protocol.
func assertAnswers(t *testing.T, b *race.Batch, reqs []race.Request, proto string) {
	t.Helper()
	if len(b.Responses) != len(reqs) {
		t.Fatalf("%d responses for %d requests", len(b.Responses), len(reqs))
	}
	for i, r := range b.Responses {
		if r.Err != nil || r.Status != 200 {
			t.Errorf("response %d: status %d, err %v", i, r.Status, r.Err)
			continue
		}
		req := reqs[i]
		method := req.Method
		if method == "" {
			method = "GET"
		}
		path := req.URL[strings.Index(req.URL[len("https://"):], "/")+len("https://"):]
		want := fmt.Sprintf("%s %s %s %s", method, path, req.Header.Get("Authorization"), req.Body)
		if string(r.Body) != want {
			t.Errorf("response %d = %q, want %q", i, r.Body, want)
		}
		if proto != "" && r.Header.Get("X-Proto") != proto {
			t.Errorf("response %d over %s, want %s", i, r.Header.Get("X-Proto"), proto)
		}
		if r.Sent.IsZero() || r.Received.Before(r.Sent) {
			t.Errorf("response %d: sent %v, received %v", i, r.Sent, r.Received)
		}
	}
}

// assertOneSegment checks the release went out in one TCP segment, where the kernel can tell.
func assertOneSegment(t *testing.T, rel race.Release) {
	t.Helper()
	if rel.Writes != 1 || rel.Split {
		t.Errorf("release took %d writes (split %v: %s), want 1", rel.Writes, rel.Split, rel.Reason)
	}
	if runtime.GOOS == "linux" && rel.Segments != 1 {
		t.Errorf("release went out in %d TCP segments, want 1", rel.Segments)
	}
}

func TestSinglePacketTLS(t *testing.T) {
	srv := httptest.NewUnstartedServer(echo(nil))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	tlsCfg := srv.Client().Transport.(*http.Transport).TLSClientConfig
	reqs := batch(srv.URL, 20)
	b := send(t, race.Options{Client: newClient(t, srv.URL, 100), TLSConfig: tlsCfg}, reqs) // Auto
	if b.Release.Mode != race.SinglePacketH2 || b.Release.Protocol != "h2" {
		t.Fatalf("release %+v, want single-packet over h2", b.Release)
	}
	assertAnswers(t, b, reqs, "HTTP/2.0")
	assertOneSegment(t, b.Release)
}

func h2cServer(t *testing.T, h http.Handler, maxStreams int) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	srv.Config.Protocols = &p
	if maxStreams > 0 {
		srv.Config.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: maxStreams}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func TestSinglePacketH2C(t *testing.T) {
	srv := h2cServer(t, echo(nil), 0)
	reqs := batch(srv.URL, 100)
	b := send(t, race.Options{Mode: race.SinglePacketH2, Client: newClient(t, srv.URL, 100)}, reqs)
	if b.Release.Protocol != "h2c" {
		t.Fatalf("protocol %q, want h2c", b.Release.Protocol)
	}
	assertAnswers(t, b, reqs, "HTTP/2.0")
	assertOneSegment(t, b.Release)
	if b.Release.Bytes > race.DefaultPacketBytes {
		t.Errorf("release of %d bytes, want at most %d", b.Release.Bytes, race.DefaultPacketBytes)
	}
}

// The server's stream limit splits a batch into several connections, each released in one write.
func TestSinglePacketSplitByStreamLimit(t *testing.T) {
	srv := h2cServer(t, echo(nil), 8)
	reqs := batch(srv.URL, 20)
	b := send(t, race.Options{Mode: race.SinglePacketH2, Client: newClient(t, srv.URL, 100)}, reqs)
	assertAnswers(t, b, reqs, "HTTP/2.0")
	if !b.Release.Split || b.Release.Writes != 3 || !strings.Contains(b.Release.Reason, "8 concurrent streams") {
		t.Errorf("release %+v, want split into 3 writes by the limit of 8 streams", b.Release)
	}
}

func TestSinglePacketSplitByPacketSize(t *testing.T) {
	srv := h2cServer(t, echo(nil), 0)
	reqs := batch(srv.URL, 20) // 10 final frames of 10 bytes, 10 of 9
	b := send(t, race.Options{Mode: race.SinglePacketH2, Client: newClient(t, srv.URL, 100), PacketBytes: 100}, reqs)
	assertAnswers(t, b, reqs, "HTTP/2.0")
	if !b.Release.Split || b.Release.Writes != 2 || !strings.Contains(b.Release.Reason, "one packet") {
		t.Errorf("release %+v, want split into 2 writes by packet size", b.Release)
	}
}

// A body larger than the server's flow-control windows is primed as the windows open.
func TestSinglePacketLargeBody(t *testing.T) {
	srv := h2cServer(t, echo(nil), 0)
	big := strings.Repeat("x", 200_000) // over the default 65535 stream and connection windows
	reqs := []race.Request{{Method: "PUT", URL: srv.URL + "/a", Body: []byte(big)}, {URL: srv.URL + "/b"}}
	b := send(t, race.Options{Mode: race.SinglePacketH2, Client: newClient(t, srv.URL, 10)}, reqs)
	assertAnswers(t, b, reqs, "HTTP/2.0")
}

func TestSinglePacketRefusedByHTTP1Server(t *testing.T) {
	srv := httptest.NewServer(echo(nil)) // HTTP/1.1 only
	defer srv.Close()
	_, err := race.Send(context.Background(), race.Options{Mode: race.SinglePacketH2, Client: newClient(t, srv.URL, 10), Timeout: 5 * time.Second}, batch(srv.URL, 2))
	if err == nil || !strings.Contains(err.Error(), "LastByteH1") {
		t.Fatalf("err = %v, want a failure with a hint to use last-byte sync", err)
	}
}

func TestLastByteH1(t *testing.T) {
	srv := httptest.NewServer(echo(nil))
	defer srv.Close()
	reqs := batch(srv.URL, 10)
	b := send(t, race.Options{Client: newClient(t, srv.URL, 100)}, reqs) // Auto on http://
	if b.Release.Mode != race.LastByteH1 || b.Release.Writes != 10 {
		t.Fatalf("release %+v, want last-byte sync with 10 writes", b.Release)
	}
	assertAnswers(t, b, reqs, "HTTP/1.1")
}

func TestLastByteH1TLS(t *testing.T) {
	srv := httptest.NewTLSServer(echo(nil)) // no HTTP/2: Auto falls back
	defer srv.Close()
	tlsCfg := srv.Client().Transport.(*http.Transport).TLSClientConfig
	reqs := batch(srv.URL, 4)
	b := send(t, race.Options{Client: newClient(t, srv.URL, 100), TLSConfig: tlsCfg}, reqs)
	if b.Release.Mode != race.LastByteH1 {
		t.Fatalf("release %+v, want last-byte sync", b.Release)
	}
	assertAnswers(t, b, reqs, "HTTP/1.1")
}

// The batch obeys the client's allowlist and budget before it connects anywhere.
func TestSendKeepsToClientLimits(t *testing.T) {
	var hits atomic.Int64
	srv := h2cServer(t, echo(&hits), 0)
	ctx := context.Background()

	other := newClient(t, "http://127.0.0.1:1", 100)
	if _, err := race.Send(ctx, race.Options{Client: other}, batch(srv.URL, 2)); !errors.Is(err, client.ErrOrigin) {
		t.Errorf("other origin: err = %v, want ErrOrigin", err)
	}
	small := newClient(t, srv.URL, 5)
	if _, err := race.Send(ctx, race.Options{Client: small}, batch(srv.URL, 6)); !errors.Is(err, client.ErrBudget) {
		t.Errorf("over budget: err = %v, want ErrBudget", err)
	}
	if small.Sent() != 0 {
		t.Errorf("a refused batch spent %d of the budget", small.Sent())
	}
	mixed := []race.Request{{URL: srv.URL + "/a"}, {URL: "http://127.0.0.1:1/b"}}
	if _, err := race.Send(ctx, race.Options{Client: newClient(t, srv.URL, 10)}, mixed); err == nil {
		t.Error("a batch with a disallowed second origin was sent")
	}
	if _, err := race.Send(ctx, race.Options{Client: small}, batch(srv.URL, 5)); err != nil {
		t.Errorf("within budget: %v", err)
	}
	if small.Sent() != 5 || hits.Load() != 5 {
		t.Errorf("spent %d, server saw %d, want 5 and 5", small.Sent(), hits.Load())
	}
}

// A server that resets a stream or dies mid-batch gives per-response errors, not a hang.
func TestSinglePacketServerFailures(t *testing.T) {
	srv := h2cServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/panic") {
			panic(http.ErrAbortHandler) // Go's server resets the stream
		}
		w.WriteHeader(204)
	}), 0)
	reqs := []race.Request{{URL: srv.URL + "/ok"}, {URL: srv.URL + "/panic"}, {URL: srv.URL + "/ok"}}
	b := send(t, race.Options{Mode: race.SinglePacketH2, Client: newClient(t, srv.URL, 10)}, reqs)
	if b.Responses[0].Status != 204 || b.Responses[2].Status != 204 {
		t.Errorf("healthy streams: %+v", b.Responses)
	}
	if b.Responses[1].Err == nil {
		t.Errorf("reset stream has no error: %+v", b.Responses[1])
	}
}

func TestTLSServerVerified(t *testing.T) {
	srv := httptest.NewUnstartedServer(echo(nil))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	// Without the test CA the handshake must fail: the engine does not skip verification.
	_, err := race.Send(context.Background(), race.Options{Client: newClient(t, srv.URL, 10), TLSConfig: &tls.Config{}}, batch(srv.URL, 2))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("err = %v, want a certificate error", err)
	}
}

// TestPrimedReleaseAtChosenMoment checks Prime's contract: no request is complete at the server
// before the release (and with HoldHeaders no handler has even started), every one completes after
// Release.Start, and a batch closed without a release is never served.
func TestPrimedReleaseAtChosenMoment(t *testing.T) {
	for _, tc := range []struct {
		mode race.Mode
		hold bool
	}{{race.SinglePacketH2, false}, {race.LastByteH1, false}, {race.LastByteH1, true}} {
		name := tc.mode.String()
		if tc.hold {
			name += "/hold-headers"
		}
		t.Run(name, func(t *testing.T) {
			var started, served atomic.Int64
			var lastStart, lastServed atomic.Int64 // UnixNano
			srv := h2cServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				started.Add(1)
				lastStart.Store(time.Now().UnixNano())
				body, err := io.ReadAll(r.Body)
				if err != nil {
					return // the client gave up before the release
				}
				served.Add(1)
				lastServed.Store(time.Now().UnixNano())
				fmt.Fprintf(w, "%s %s %s %s", r.Method, r.URL.RequestURI(), r.Header.Get("Authorization"), body)
			}), 0)
			c := newClient(t, srv.URL, 100)
			ctx := context.Background()
			reqs := batch(srv.URL, 4)
			o := race.Options{Mode: tc.mode, Client: c, HoldHeaders: tc.hold}

			p, err := race.Prime(ctx, o, reqs)
			if err != nil {
				t.Fatalf("Prime: %v", err)
			}
			time.Sleep(30 * time.Millisecond) // the server holds the requests meanwhile
			if n := served.Load(); n != 0 {
				t.Errorf("%d requests complete before the release", n)
			}
			if n := started.Load(); tc.hold && n != 0 {
				t.Errorf("%d handlers started before a HoldHeaders release", n)
			}
			rel := p.Release()
			if again := p.Release(); again.Start != rel.Start {
				t.Errorf("a second Release released again: %v then %v", rel.Start, again.Start)
			}
			b := p.Wait()
			p.Close() // after Wait: a no-op
			if b == nil {
				t.Fatal("Wait returned no batch")
			}
			assertAnswers(t, b, reqs, "")
			if n := served.Load(); n != int64(len(reqs)) {
				t.Errorf("%d requests served, want %d", n, len(reqs))
			}
			if last := time.Unix(0, lastServed.Load()); last.Before(rel.Start) {
				t.Errorf("a request completed at %v, before the release at %v", last, rel.Start)
			}
			if last := time.Unix(0, lastStart.Load()); tc.hold && last.Before(rel.Start) {
				t.Errorf("a handler started at %v, before the release at %v", last, rel.Start)
			}
			if p.Wait() != nil {
				t.Error("a second Wait returned a batch")
			}

			served.Store(0)
			p, err = race.Prime(ctx, o, reqs)
			if err != nil {
				t.Fatalf("Prime: %v", err)
			}
			p.Close()
			time.Sleep(30 * time.Millisecond)
			if n := served.Load(); n != 0 {
				t.Errorf("%d requests served from a batch closed without a release", n)
			}
		})
	}
	t.Run("hold-headers-refused-on-h2", func(t *testing.T) {
		srv := h2cServer(t, echo(nil), 0)
		_, err := race.Prime(context.Background(), race.Options{Mode: race.SinglePacketH2, HoldHeaders: true, Client: newClient(t, srv.URL, 10)}, batch(srv.URL, 1))
		if err == nil || !strings.Contains(err.Error(), "LastByteH1") {
			t.Fatalf("Prime = %v; want an error naming LastByteH1", err)
		}
	})
}

// TestHoldHeadersTLS checks HoldHeaders over TLS with Auto against a server that also speaks HTTP/2:
// the batch goes over HTTP/1.1 (ALPN), no handler starts before the release, and every request
// with its body arrives whole.
func TestHoldHeadersTLS(t *testing.T) {
	var started atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		started.Add(1)
		echo(nil).ServeHTTP(w, r)
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	tlsCfg := srv.Client().Transport.(*http.Transport).TLSClientConfig
	reqs := batch(srv.URL, 4)
	p, err := race.Prime(context.Background(), race.Options{Client: newClient(t, srv.URL, 100), TLSConfig: tlsCfg, HoldHeaders: true}, reqs)
	if err != nil {
		t.Fatalf("Prime: %v", err)
	}
	time.Sleep(30 * time.Millisecond)
	if n := started.Load(); n != 0 {
		t.Errorf("%d handlers started before the release", n)
	}
	p.Release()
	b := p.Wait()
	if b.Release.Mode != race.LastByteH1 || b.Release.Protocol != "http/1.1" {
		t.Fatalf("release %+v, want last-byte sync over HTTP/1.1", b.Release)
	}
	assertAnswers(t, b, reqs, "HTTP/1.1")
}

// The race engine teaches the client's redactor the secrets of its requests and responses, as the
// client does for its own.
func TestLearnsSecretsOfBatch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Set-Cookie", "sid=c-"+r.URL.Path[1:])
		io.WriteString(w, `{"token":"t-`+r.URL.Path[1:]+`"}`)
	}))
	defer srv.Close()
	red := &redact.Redactor{}
	c, err := client.New(client.Options{Origins: []string{srv.URL}, Rate: 1e6, Redactor: red})
	if err != nil {
		t.Fatal(err)
	}
	reqs := []race.Request{
		{Method: "POST", URL: srv.URL + "/a?secret=qs1", Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"pin":"1","password":"pw1"}`)},
		{URL: srv.URL + "/b", Header: http.Header{"X-Api-Key": {"ak2"}}},
	}
	send(t, race.Options{Client: c}, reqs)
	want := []string{"ak2", "c-a", "c-b", "pw1", "qs1", "t-a", "t-b"}
	if got := red.Secrets(); !slices.Equal(got, want) {
		t.Errorf("learned %q, want %q", got, want)
	}
}
