// Package race sends a batch of HTTP requests so that they reach the server at the same moment, to
// expose check-then-act races (limit overruns, an action racing a revocation).
//
// For most uses, call Send with Mode Auto. Over TLS, when the server negotiates HTTP/2, Send uses the
// single-packet attack (James Kettle, "Smashing the state machine", 2023): every request is sent but
// its final frame, the connection is warmed with a PING, and then the final frames of all requests go
// out in one write, so in one TCP segment that the network cannot spread out. Otherwise it uses
// last-byte synchronisation over HTTP/1.1: one connection per request, each request written but its
// last byte, then all the last bytes written back to back. SinglePacketH2 on an http:// URL speaks
// HTTP/2 with prior knowledge (h2c).
//
// The requests of a batch may differ in method, URL and headers (a revocation raced against an
// action), but must share one origin. Every batch spends its size from the client's budget and is
// refused when an origin is not allowed, like any request of the scanner.
package race

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tocsin/tocsin/internal/client"
)

// Mode chooses how a batch is synchronised.
type Mode int

const (
	// Auto uses SinglePacketH2 when the server negotiates HTTP/2 over TLS (ALPN h2), else LastByteH1.
	Auto Mode = iota
	// SinglePacketH2 withholds every stream's final frame and releases them all in one write. Over
	// http:// it speaks HTTP/2 with prior knowledge (h2c).
	SinglePacketH2
	// LastByteH1 opens one HTTP/1.1 connection per request and withholds each request's last byte.
	LastByteH1
)

func (m Mode) String() string {
	switch m {
	case Auto:
		return "auto"
	case SinglePacketH2:
		return "single-packet-h2"
	case LastByteH1:
		return "last-byte-h1"
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// Request is one request of a batch.
type Request struct {
	Method string // default GET
	URL    string // absolute http or https URL; every request of a batch has the same origin
	Header http.Header
	Body   []byte
}

// Options configure Send. Client is required.
type Options struct {
	Mode Mode
	// Client supplies the origin allowlist, the budget (a batch spends len(reqs)), the rate limit, and
	// defaults for Timeout and MaxResponseBytes.
	Client    *client.Client
	TLSConfig *tls.Config // for https; nil means the system roots. NextProtos is set by Send.
	// Timeout bounds the whole batch, from dialling to the last response; default the client's
	// per-request timeout plus Settle.
	Timeout time.Duration
	// Settle is how long the primed requests wait before the release, so the server has read and
	// parsed everything but the final bytes; default 5 ms. For HTTP/2 the warm-up PING's ACK, awaited
	// after it, already proves the server has read every HEADERS frame, so the wait need not be long;
	// and a long one hurts: after Kettle's 100 ms the server's handlers and the CPUs have gone idle and
	// wake slowly. Measured on this project's 2-core machines (make bench-race, N=20 h2c, loopback):
	// median spread 484 us after 100 ms, 149 us after 10 ms, 135 us after 5 ms. Raise it for servers
	// that start handlers late.
	Settle time.Duration
	// MaxResponseBytes caps each response body read; default the client's. A longer body is cut
	// there and marked Truncated, and the rest is not read.
	MaxResponseBytes int64
	// MaxHeaderBytes caps each response's status line and headers (HTTP/1.1), or its decoded header
	// list (HTTP/2); default the client's. A response over it is an error and is not read further.
	MaxHeaderBytes int64
	// PacketBytes is the most release bytes put in one write; default 1400, which fits one TCP segment
	// on a 1500-byte MTU path with TLS record overhead. Batches whose final frames need more are split.
	PacketBytes int
	// HoldHeaders, for LastByteH1, withholds the end of each request's header section (its final
	// line feed) and sends the body with the release, instead of withholding the body's last byte.
	// A server starts a handler once the headers are complete, so with HoldHeaders no handler starts
	// (and no authorization check runs) before the release; without it, a request with a body may
	// have its handler started, blocked on the body. HTTP/2 starts handlers at HEADERS, so a batch
	// that needs this must use LastByteH1.
	HoldHeaders bool
	// Dial, when set, replaces the TCP dialler (tests; a harness inside a network namespace).
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Defaults for zero Options fields.
const (
	DefaultSettle      = 5 * time.Millisecond
	DefaultPacketBytes = 1400
	// maxBatch bounds one batch; far above what a single packet can carry, it keeps a typo from
	// opening thousands of connections.
	maxBatch = 1000
)

// Response is one request's outcome. Err is set when it got no complete response; Status may still
// be set when the stream was cut after its headers.
type Response struct {
	Status    int
	Header    http.Header
	Body      []byte
	Truncated bool // the body was longer than MaxResponseBytes
	// Sent is when the write that released this request started; Received is when its response
	// headers were parsed.
	Sent     time.Time
	Received time.Time
	Err      error
}

// Release describes how the batch's final bytes went out.
type Release struct {
	Mode     Mode   // the mode used, never Auto
	Protocol string // "h2" (TLS), "h2c", "http/1.1"
	// Writes is how many write calls the release took: 1 for an unsplit single-packet batch, one per
	// connection for last-byte sync.
	Writes int
	// Split is true when a single-packet batch did not fit one write (the server's
	// MAX_CONCURRENT_STREAMS, or PacketBytes) and went out as several, one per connection.
	Split  bool
	Reason string // why it was split
	Bytes  int    // bytes written by the release (TLS records included where used)
	// Segments counts the TCP segments the release writes sent (Linux TCP_INFO); -1 when unknown.
	Segments int
	Start    time.Time     // when the first release write started
	Duration time.Duration // from the first release write's start to the last one's end
}

// Batch is the result of Send: Responses[i] answers reqs[i].
type Batch struct {
	Responses []Response
	Release   Release
}

// Spread is the time between the first and the last response received, a client-side bound that
// includes the server's processing; servers' own arrival times are tighter.
func (b *Batch) Spread() time.Duration {
	var first, last time.Time
	for _, r := range b.Responses {
		if r.Received.IsZero() {
			continue
		}
		if first.IsZero() || r.Received.Before(first) {
			first = r.Received
		}
		if r.Received.After(last) {
			last = r.Received
		}
	}
	return last.Sub(first)
}

// ErrNoH2 is returned by SinglePacketH2 when a TLS server does not negotiate HTTP/2.
var ErrNoH2 = errors.New("server did not negotiate HTTP/2 (ALPN h2)")

// Send sends reqs as one synchronised batch and waits for every response, or for the timeout. A
// failure before the release returns an error and no batch; after it, failures are per response.
func Send(ctx context.Context, o Options, reqs []Request) (*Batch, error) {
	p, err := Prime(ctx, o, reqs)
	if err != nil {
		return nil, err
	}
	p.Release()
	return p.Wait(), nil
}

// Primed is a batch sent but for its final bytes: the server holds every request, parsed, and waits
// for the release. It lets a caller release at a moment of its choosing, and act right after (a
// revocation timed against an action's arrival). A Primed is not safe for concurrent use.
type Primed struct {
	client  *client.Client // teaches its redactor the responses' secrets
	cancel  context.CancelFunc
	release func() Release
	wait    func() *Batch
	abort   func()
	rel     Release
	state   int // primedState, releasedState or doneState
}

const (
	primedState = iota
	releasedState
	doneState
)

// Prime connects and sends every request of reqs but its final bytes, and waits for the server to
// have read them (Options.Settle, and for HTTP/2 a PING's acknowledgement). The batch's timeout runs
// from here to the last response. Call Release and then Wait, or Close to give up.
func Prime(ctx context.Context, o Options, reqs []Request) (*Primed, error) {
	if o.Client == nil {
		return nil, errors.New("race: no client (hint: pass the target's client, which holds the allowlist and budget)")
	}
	if len(reqs) == 0 {
		return nil, errors.New("race: empty batch")
	}
	if len(reqs) > maxBatch {
		return nil, fmt.Errorf("race: batch of %d requests, want at most %d", len(reqs), maxBatch)
	}
	pr, err := prepare(o.Client, reqs)
	if err != nil {
		return nil, err
	}
	if o.Settle <= 0 {
		o.Settle = DefaultSettle
	}
	if o.Timeout <= 0 {
		o.Timeout = o.Client.Timeout() + o.Settle
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = o.Client.MaxResponseBytes()
	}
	if o.MaxHeaderBytes <= 0 {
		o.MaxHeaderBytes = o.Client.MaxHeaderBytes()
	}
	if o.PacketBytes <= 0 {
		o.PacketBytes = DefaultPacketBytes
	}
	if o.Dial == nil {
		d := &net.Dialer{Timeout: o.Timeout}
		o.Dial = d.DialContext
	}
	if err := o.Client.Reserve(ctx, len(reqs)); err != nil {
		return nil, fmt.Errorf("race: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	p, err := prime(ctx, o, pr)
	if err != nil {
		cancel()
		return nil, err
	}
	p.cancel, p.client = cancel, o.Client
	return p, nil
}

func prime(ctx context.Context, o Options, pr []prepared) (*Primed, error) {
	tlsOn := pr[0].url.Scheme == "https"
	if o.HoldHeaders {
		switch o.Mode {
		case Auto, LastByteH1:
			return primeH1(ctx, o, pr, tlsOn)
		default:
			return nil, fmt.Errorf("race: HoldHeaders needs Mode LastByteH1 (HTTP/2 servers start handlers at HEADERS), not %s", o.Mode)
		}
	}
	switch o.Mode {
	case SinglePacketH2:
		return primeH2(ctx, o, pr, tlsOn, nil)
	case LastByteH1:
		return primeH1(ctx, o, pr, tlsOn)
	case Auto:
		if !tlsOn {
			// Without TLS nothing negotiates the protocol, and an HTTP/1.1 server answers an HTTP/2
			// preface with an error, so cleartext defaults to what every server speaks.
			return primeH1(ctx, o, pr, false)
		}
		first, err := dialTLS(ctx, o, pr[0].url, []string{"h2", "http/1.1"})
		if err != nil {
			return nil, fmt.Errorf("race: %w", err)
		}
		if first.ConnectionState().NegotiatedProtocol == "h2" {
			return primeH2(ctx, o, pr, true, first)
		}
		first.Close()
		return primeH1(ctx, o, pr, true)
	}
	return nil, fmt.Errorf("race: unknown mode %d", o.Mode)
}

// Release writes the final bytes of every request, as fast as the mode allows (one write for an
// unsplit single-packet batch), and returns when they are written; Release.Start is the moment the
// first write began. Calling it again returns the first call's Release.
func (p *Primed) Release() Release {
	if p.state == primedState {
		p.rel = p.release()
		p.state = releasedState
	}
	return p.rel
}

// Wait waits for every response, or for the batch's timeout, and closes the connections. It
// releases the batch first if Release was not called. Calling it again returns nil.
func (p *Primed) Wait() *Batch {
	if p.state == doneState {
		return nil
	}
	p.Release()
	b := p.wait()
	p.state = doneState
	p.cancel()
	if red := p.client.Redactor(); red != nil {
		for _, r := range b.Responses {
			red.LearnResponse(r.Header, r.Body)
		}
	}
	return b
}

// Close gives up a batch not yet waited for: it closes the connections, so a primed request that was
// not released reaches the server incomplete and is not served. It is safe to call after Wait.
func (p *Primed) Close() {
	if p.state == doneState {
		return
	}
	p.abort()
	p.state = doneState
	p.cancel()
}

// prepared is a validated request.
type prepared struct {
	Request
	url *url.URL
}

func prepare(c *client.Client, reqs []Request) ([]prepared, error) {
	out := make([]prepared, len(reqs))
	var origin string
	for i, r := range reqs {
		u, err := url.Parse(r.URL)
		if err != nil {
			return nil, fmt.Errorf("race: request %d: %w", i, err)
		}
		if err := c.Allow(u); err != nil {
			return nil, fmt.Errorf("race: request %d: %w", i, err)
		}
		o := strings.ToLower(u.Scheme) + "://" + hostPort(u)
		if i == 0 {
			origin = o
		} else if o != origin {
			return nil, fmt.Errorf("race: request %d goes to %s, request 0 to %s (hint: a synchronised batch has one origin)", i, o, origin)
		}
		if r.Method == "" {
			r.Method = http.MethodGet
		}
		if !validMethod(r.Method) {
			return nil, fmt.Errorf("race: request %d: invalid method %q", i, r.Method)
		}
		u.Scheme = strings.ToLower(u.Scheme)
		out[i] = prepared{Request: r, url: u}
		c.Redactor().LearnRequest(u, r.Header, r.Body)
	}
	return out, nil
}

func validMethod(m string) bool {
	for _, c := range m {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("()<>@,;:\\\"/[]?={}", c) {
			return false
		}
	}
	return m != ""
}

// hostPort is u's host with the scheme's default port made explicit.
func hostPort(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = "80"
		if strings.EqualFold(u.Scheme, "https") {
			port = "443"
		}
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// dialTCP connects with Nagle off: the release is one write that must leave at once, not wait for
// an ACK of earlier data.
func dialTCP(ctx context.Context, o Options, u *url.URL) (net.Conn, error) {
	c, err := o.Dial(ctx, "tcp", hostPort(u))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", hostPort(u), err)
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return c, nil
}

func dialTLS(ctx context.Context, o Options, u *url.URL, protos []string) (*tls.Conn, error) {
	raw, err := dialTCP(ctx, o, u)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{}
	if o.TLSConfig != nil {
		cfg = o.TLSConfig.Clone()
	}
	cfg.NextProtos = protos
	if cfg.ServerName == "" {
		cfg.ServerName = u.Hostname()
	}
	c := tls.Client(raw, cfg)
	if err := c.HandshakeContext(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", hostPort(u), err)
	}
	return c, nil
}

// tcpOf returns the TCP connection under c, for TCP_INFO.
func tcpOf(c net.Conn) *net.TCPConn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	t, _ := c.(*net.TCPConn)
	return t
}
