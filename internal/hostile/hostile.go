// Package hostile is an HTTP/1.1 server that misbehaves on purpose, for tests of how tocsin holds up
// against a target that is broken or out to harm it: endless headers and bodies, stalls, resets,
// redirects off the origin, a long Retry-After, and echoes of everything it was sent. Each path is
// answered in the Mode chosen for it, set at Start or changed later with Set.
//
// It listens on 127.0.0.1 only, with a second listener, the decoy, that redirects point at: a client
// that keeps to its origins never connects to it, and Decoy counts the connections it got.
package hostile

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// Mode is how the server answers a path.
type Mode int

const (
	// OK answers 200 with {"ok":true}.
	OK Mode = iota
	// Create answers 201 with {"id":"rN"}, a new N each time: a setup that creates a resource.
	Create
	// OneShot answers 200 the first time a path is asked and 409 after: a one-shot action with its
	// limit enforced (no race).
	OneShot
	// EndlessHeaders sends a status line and then header lines without end.
	EndlessHeaders
	// EndlessBody sends 200 and a chunked JSON body without end.
	EndlessBody
	// StallAfterHeaders sends 200 with a Content-Length and then nothing, until the client gives up.
	StallAfterHeaders
	// Reset reads the request and resets the connection (TCP RST) without answering.
	Reset
	// RedirectOffOrigin answers 302 to the same path on the decoy, with a query carrying DecoyQuery.
	RedirectOffOrigin
	// TooManyRequests answers 429 with Retry-After: 86400.
	TooManyRequests
	// Echo answers 200 with a JSON echo of the request: method, path, query, headers and body.
	Echo
	// EchoError answers 500 with the echo: a hook that fails and repeats what it was sent.
	EchoError
	// EchoSecrets answers 200 with the secrets it knows (Options.Secrets, then what the server
	// minted) placed so that one of them straddles Options.Around bytes, each in turn and at a
	// different offset each round, followed by the other secrets and the echo.
	EchoSecrets
	// Login answers 200 with {"token": a new JWT, "expires_in": 3600} and a session cookie.
	Login
	// CreateWithJWT is Create whose answer also holds a JWT (a receipt) and sets a cookie.
	CreateWithJWT
	// Guarded answers 200 with the echo when the request carries a token Login minted as a bearer
	// token, and 401 with the echo otherwise: an API that checks its tokens but never their
	// revocation.
	Guarded
)

var modeNames = [...]string{"ok", "create", "one-shot", "endless-headers", "endless-body", "stall-after-headers",
	"reset", "redirect-off-origin", "too-many-requests", "echo", "echo-error", "echo-secrets", "login", "create-with-jwt", "guarded"}

func (m Mode) String() string {
	if m >= 0 && int(m) < len(modeNames) {
		return modeNames[m]
	}
	return fmt.Sprintf("mode(%d)", int(m))
}

// DecoyQuery is in the query of every redirect to the decoy: a stand-in for a secret that a client
// must not print when it reports where a redirect pointed.
const DecoyQuery = "sig=DecoyQuerySecret0042"

// RetryAfter is the Retry-After value of TooManyRequests, in seconds: a day.
const RetryAfter = 86400

// Options configure a Server. The zero value answers every path OK.
type Options struct {
	Default Mode            // for paths not in Paths
	Paths   map[string]Mode // by exact URL path, e.g. "/coupons/r2/redeem"
	// Limit, when positive, stops EndlessHeaders and EndlessBody after about that many bytes and
	// holds the connection open: an old client without caps then stays within a test's memory.
	Limit int64
	// Secrets and Around are for EchoSecrets; Around defaults to 200, the report's body excerpt.
	Secrets []string
	Around  int
}

// Server is a running hostile server.
type Server struct {
	ln, decoy net.Listener
	opts      Options

	mu       sync.Mutex
	paths    map[string]Mode
	requests map[string]int
	created  int
	minted   []string        // tokens, cookies and ids handed out, in order
	tokens   map[string]bool // tokens Login minted

	decoyConns atomic.Int64
	wg         sync.WaitGroup
	closing    atomic.Bool
	connMu     sync.Mutex
	conns      map[net.Conn]bool
}

// Start starts a server and its decoy on 127.0.0.1, closed when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	decoy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	if o.Around <= 0 {
		o.Around = 200
	}
	s := &Server{ln: ln, decoy: decoy, opts: o, paths: map[string]Mode{}, requests: map[string]int{}, tokens: map[string]bool{}, conns: map[net.Conn]bool{}}
	for p, m := range o.Paths {
		s.paths[p] = m
	}
	s.wg.Add(2)
	go s.accept(ln, s.serveConn)
	go s.accept(decoy, s.decoyConn)
	t.Cleanup(s.Close)
	return s
}

// URL is the server's origin, http://127.0.0.1:PORT.
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// DecoyURL is the decoy's origin, where RedirectOffOrigin points.
func (s *Server) DecoyURL() string { return "http://" + s.decoy.Addr().String() }

// DecoyConnections is how many connections the decoy accepted.
func (s *Server) DecoyConnections() int64 { return s.decoyConns.Load() }

// Set changes how path is answered from the next request on.
func (s *Server) Set(path string, m Mode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.paths[path] = m
}

// Requests is how many requests for path were read (their headers at least).
func (s *Server) Requests(path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[path]
}

// Minted returns every secret the server handed out, in order: the JWTs of Login and
// CreateWithJWT, their cookies, and the ids of Create and CreateWithJWT.
func (s *Server) Minted() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.minted...)
}

// mint records secrets the server hands out; token ones are accepted by Guarded.
func (s *Server) mint(token bool, secrets ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.minted = append(s.minted, secrets...)
	if token {
		s.tokens[secrets[0]] = true
	}
}

// Close stops both listeners and closes every open connection, so that a mode holding one ends.
func (s *Server) Close() {
	if s.closing.Swap(true) {
		return
	}
	s.ln.Close()
	s.decoy.Close()
	s.connMu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.connMu.Unlock()
	s.wg.Wait()
}

// accept hands each connection ln accepts to handle, until ln is closed.
func (s *Server) accept(ln net.Listener, handle func(net.Conn)) {
	defer s.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		handle(c)
	}
}

// decoyConn counts a connection to the decoy and closes it: it has nothing to say.
func (s *Server) decoyConn(c net.Conn) {
	s.decoyConns.Add(1)
	c.Close()
}

// serveConn answers a connection on its own goroutine, tracked so that Close can end it.
func (s *Server) serveConn(c net.Conn) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if s.closing.Load() {
		c.Close()
		return
	}
	s.conns[c] = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.handle(c)
		s.connMu.Lock()
		delete(s.conns, c)
		s.connMu.Unlock()
		c.Close()
	}()
}

// maxRequestBody bounds what the server reads of a request body, so a test's client cannot grow it.
const maxRequestBody = 1 << 20

// handle answers the requests on one connection until a mode ends it or the client leaves.
func (s *Server) handle(c net.Conn) {
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, maxRequestBody))
		if err != nil {
			return
		}
		s.mu.Lock()
		mode, ok := s.paths[req.URL.Path]
		if !ok {
			mode = s.opts.Default
		}
		s.requests[req.URL.Path]++
		nth := s.requests[req.URL.Path]
		s.mu.Unlock()
		if !s.answer(c, mode, nth, req, body) || req.Close {
			return
		}
	}
}

// answer writes the response of mode to the nth request for its path; false ends the connection.
func (s *Server) answer(c net.Conn, mode Mode, nth int, req *http.Request, body []byte) bool {
	switch mode {
	case OK:
		return reply(c, 200, nil, []byte(`{"ok":true}`))
	case Create:
		id := s.newID()
		s.mint(false, id)
		return reply(c, 201, nil, fmt.Appendf(nil, `{"id":%q}`, id))
	case CreateWithJWT:
		id, receipt, cookie := s.newID(), newJWT("receipt"), rand.Text()
		s.mint(false, id, receipt, cookie)
		return reply(c, 201, http.Header{"Set-Cookie": {"sid=" + cookie + "; Path=/; HttpOnly"}}, fmt.Appendf(nil, `{"id":%q,"receipt":%q}`, id, receipt))
	case Login:
		token, cookie := newJWT("login"), rand.Text()
		s.mint(true, token, cookie)
		return reply(c, 200, http.Header{"Set-Cookie": {"session=" + cookie + "; Path=/; HttpOnly"}}, fmt.Appendf(nil, `{"token":%q,"expires_in":3600}`, token))
	case Guarded:
		bearer, _ := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		s.mu.Lock()
		ok := s.tokens[bearer]
		s.mu.Unlock()
		if !ok {
			return reply(c, 401, nil, echo(req, body))
		}
		return reply(c, 200, nil, echo(req, body))
	case OneShot:
		if nth == 1 {
			return reply(c, 200, nil, []byte(`{"redeemed":true}`))
		}
		return reply(c, 409, nil, []byte(`{"error":"already redeemed"}`))
	case EndlessHeaders:
		s.endless(c, "HTTP/1.1 200 OK\r\n", func(i int) string {
			return fmt.Sprintf("X-Filler-%d: %s\r\n", i, strings.Repeat("h", 1000))
		})
	case EndlessBody:
		s.endless(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{\"a\":[\"\r\n",
			func(int) string { return "400\r\n" + strings.Repeat("b", 0x400) + "\r\n" })
	case StallAfterHeaders:
		if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"); err == nil {
			hold(c)
		}
	case Reset:
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // Close then sends RST, not FIN
		}
	case RedirectOffOrigin:
		return reply(c, 302, http.Header{"Location": {s.DecoyURL() + req.URL.Path + "?" + DecoyQuery}}, nil)
	case TooManyRequests:
		return reply(c, 429, http.Header{"Retry-After": {strconv.Itoa(RetryAfter)}}, []byte(`{"error":"slow down"}`))
	case Echo:
		return reply(c, 200, nil, echo(req, body))
	case EchoError:
		return reply(c, 500, nil, echo(req, body))
	case EchoSecrets:
		return reply(c, 200, nil, s.secretsBody(nth, echo(req, body)))
	}
	return false
}

// endless writes head, then line(0), line(1), ... until the client stops reading or goes, or until
// Options.Limit, after which it holds the connection.
func (s *Server) endless(c net.Conn, head string, line func(int) string) {
	w := bufio.NewWriterSize(c, 64<<10)
	written, err := w.WriteString(head)
	for i := 0; err == nil; i++ {
		if s.opts.Limit > 0 && int64(written) >= s.opts.Limit {
			if w.Flush() == nil {
				hold(c)
			}
			return
		}
		var n int
		n, err = w.WriteString(line(i))
		written += n
	}
}

// hold waits until the client closes the connection (or the server does), reading and discarding.
func hold(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

// secretsBody places the secrets the server knows (Options.Secrets, then what it minted) so that
// one of them straddles Options.Around: each secret in turn, request after request, and each time
// its turn comes one byte later, so that over rounds of len+1 requests a secret crosses the mark at
// every position. The others and the echo follow.
func (s *Server) secretsBody(nth int, echo []byte) []byte {
	secrets := append(append([]string(nil), s.opts.Secrets...), s.Minted()...)
	var b bytes.Buffer
	if len(secrets) > 0 {
		turn := (nth - 1) % len(secrets)
		straddler := secrets[turn]
		round := (nth - 1) / len(secrets)
		b.WriteString(strings.Repeat("x", max(s.opts.Around-len(straddler)+round%(len(straddler)+1), 0)))
		b.WriteString(straddler + " ")
		for i, sec := range secrets {
			if i != turn {
				b.WriteString(sec + " ")
			}
		}
	}
	b.Write(echo)
	return b.Bytes()
}

// newID is the id of a new resource: r1, r2, ...
func (s *Server) newID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.created++
	return fmt.Sprintf("r%d", s.created)
}

// newJWT is a JWT of subject sub, signed with nothing anyone checks (32 random bytes).
func newJWT(sub string) string {
	enc := base64.RawURLEncoding
	sig := make([]byte, 32)
	_, _ = rand.Read(sig)
	return enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + "." +
		enc.EncodeToString([]byte(`{"sub":"`+sub+`","jti":"`+rand.Text()+`"}`)) + "." + enc.EncodeToString(sig)
}

// echo is the JSON echo of a request: what a careless error page repeats. Body and query come first
// and the headers leave out those the HTTP client adds on its own, so that what the caller chose to
// send lands in the first 200 bytes, where reports quote a response.
func echo(req *http.Request, body []byte) []byte {
	headers := req.Header.Clone()
	for _, h := range []string{"Accept-Encoding", "User-Agent", "Content-Length", "Content-Type", "Connection"} {
		headers.Del(h)
	}
	out, _ := json.Marshal(struct {
		Body    string      `json:"body"`
		Query   string      `json:"query"`
		Method  string      `json:"method"`
		Path    string      `json:"path"`
		Headers http.Header `json:"headers"`
	}{string(body), req.URL.RawQuery, req.Method, req.URL.Path, headers})
	return out
}

// reply writes one complete response; false when the write failed.
func reply(c net.Conn, status int, h http.Header, body []byte) bool {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", status, http.StatusText(status))
	for k, vs := range h {
		for _, v := range vs {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	if len(body) > 0 {
		b.WriteString("Content-Type: application/json\r\n")
	}
	fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n", len(body))
	b.Write(body)
	_, err := c.Write(b.Bytes())
	return err == nil
}
