package race_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/hostile"
	"github.com/tocsin/tocsin/internal/race"
)

// A server that sends headers without end gets an error at the header cap, at once, on the
// last-byte path and on the held-headers path (the in-flight check's). The server stops at 4 MiB and
// holds the connection, so that without the cap a reader waits for the timeout instead of filling
// memory.
func TestHeaderCapH1(t *testing.T) {
	srv := hostile.Start(t, hostile.Options{Default: hostile.EndlessHeaders, Limit: 4 << 20})
	for _, hold := range []bool{false, true} {
		start := time.Now()
		ctx := context.Background()
		o := race.Options{Mode: race.LastByteH1, HoldHeaders: hold, Client: newClient(t, srv.URL(), 10), Timeout: 5 * time.Second}
		b, err := race.Send(ctx, o, []race.Request{{URL: srv.URL() + "/a"}, {Method: "POST", URL: srv.URL() + "/b", Body: []byte("x")}})
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range b.Responses {
			if r.Err == nil || !strings.Contains(r.Err.Error(), "response headers longer than 1048576 bytes") {
				t.Errorf("hold headers %v: response %d: status %d, err %v; want the header cap", hold, i, r.Status, r.Err)
			}
		}
		if d := time.Since(start); d > 2500*time.Millisecond {
			t.Errorf("hold headers %v: took %v, as if read until the timeout", hold, d)
		}
	}
}

// An HTTP/1.1 body over the cap ends the response there, truncated, and the rest is not read: the
// server's body has no end, so reading on would last until the timeout.
func TestBodyCapH1StopsReading(t *testing.T) {
	srv := hostile.Start(t, hostile.Options{Default: hostile.EndlessBody})
	sendToEndlessBody(t, race.LastByteH1, srv.URL())
}

// An HTTP/2 body over the cap ends the response there, truncated, without waiting for the rest.
func TestBodyCapH2StopsReading(t *testing.T) {
	srv := h2cServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		chunk := []byte(strings.Repeat("b", 16<<10))
		for r.Context().Err() == nil {
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}), 0)
	sendToEndlessBody(t, race.SinglePacketH2, srv.URL)
}

// sendToEndlessBody sends two requests to a server whose bodies never end, with a body cap of 1000
// bytes and a timeout of 5 s, and checks that both come back cut at the cap, well before the timeout.
func sendToEndlessBody(t *testing.T, mode race.Mode, base string) {
	t.Helper()
	start := time.Now()
	o := race.Options{Mode: mode, Client: newClient(t, base, 10), Timeout: 5 * time.Second, MaxResponseBytes: 1000}
	b, err := race.Send(context.Background(), o, []race.Request{{URL: base + "/a"}, {URL: base + "/b"}})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range b.Responses {
		if r.Err != nil || r.Status != 200 || !r.Truncated || len(r.Body) != 1000 {
			t.Errorf("response %d: status %d, err %v, truncated %v, %d bytes; want 1000 bytes, truncated", i, r.Status, r.Err, r.Truncated, len(r.Body))
		}
	}
	if d := time.Since(start); d > 2500*time.Millisecond {
		t.Errorf("took %v, as if the endless body was read until the timeout", d)
	}
}
