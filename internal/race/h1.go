package race

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// h1conn is one request of a last-byte batch on its own connection.
type h1conn struct {
	conn net.Conn
	tcp  *net.TCPConn
	last []byte // the withheld bytes: the last one, or with HoldHeaders the header end and the body
	// resp is the reader goroutine's; sent and werr are the release's, merged after both are done.
	resp Response
	sent time.Time
	werr error
}

// primeH1 prepares last-byte synchronisation: one connection per request, each written but its last
// byte (or, with HoldHeaders, but the end of its headers and its body). The release writes the
// withheld bytes back to back.
func primeH1(ctx context.Context, o Options, pr []prepared, tlsOn bool) (*Primed, error) {
	conns := make([]*h1conn, len(pr))
	closeAll := func() {
		for _, c := range conns {
			if c != nil {
				c.conn.Close()
			}
		}
	}
	// Dial in parallel: N handshakes one after another would cost N round trips before the race.
	var wg sync.WaitGroup
	errs := make([]error, len(pr))
	for i := range pr {
		wg.Go(func() {
			var c net.Conn
			var err error
			if tlsOn {
				c, err = dialTLS(ctx, o, pr[i].url, []string{"http/1.1"})
			} else {
				c, err = dialTCP(ctx, o, pr[i].url)
			}
			if err != nil {
				errs[i] = err
				return
			}
			if dl, ok := ctx.Deadline(); ok {
				_ = c.SetDeadline(dl)
			}
			conns[i] = &h1conn{conn: c, tcp: tcpOf(c)}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("race: request %d: %w", i, err)
		}
	}
	for i, c := range conns {
		msg := h1Message(pr[i])
		cut := len(msg) - 1
		if o.HoldHeaders {
			cut = bytes.Index(msg, []byte("\r\n\r\n")) + 3 // the header section's final "\n"
		}
		c.last = msg[cut:]
		if _, err := c.conn.Write(msg[:cut]); err != nil {
			closeAll()
			return nil, fmt.Errorf("race: request %d: %w", i, err)
		}
	}
	// Readers start now: a server that answers before the last byte (an error, say) is recorded.
	for i, c := range conns {
		wg.Go(func() { c.read(o.MaxHeaderBytes, o.MaxResponseBytes, pr[i].Method) })
	}
	select {
	case <-time.After(o.Settle):
	case <-ctx.Done():
		closeAll()
		wg.Wait()
		return nil, fmt.Errorf("race: %w", ctx.Err())
	}

	release := func() Release {
		rel := Release{Mode: LastByteH1, Protocol: "http/1.1", Writes: len(conns), Split: false, Segments: -1}
		before := make([]int, len(conns))
		for i, c := range conns {
			before[i] = segsOut(c.tcp)
		}
		start := time.Now()
		for _, c := range conns {
			c.sent = time.Now()
			if _, err := c.conn.Write(c.last); err != nil {
				c.werr = fmt.Errorf("release write: %w", err)
				c.conn.Close()
			}
			rel.Bytes += len(c.last)
		}
		end := time.Now()
		segs := 0
		for i, c := range conns {
			after := segsOut(c.tcp)
			if before[i] < 0 || after < 0 {
				segs = -1
				break
			}
			segs += after - before[i]
		}
		rel.Segments, rel.Start, rel.Duration = segs, start, end.Sub(start)
		if tlsOn {
			rel.Bytes += len(conns) * tlsRecordOverhead
		}
		return rel
	}
	var rel Release
	wait := func() *Batch {
		stop := context.AfterFunc(ctx, closeAll)
		wg.Wait()
		stop()
		closeAll()
		b := &Batch{Responses: make([]Response, len(pr)), Release: rel}
		for i, c := range conns {
			b.Responses[i] = c.resp
			b.Responses[i].Sent = c.sent
			if c.werr != nil {
				b.Responses[i].Err = c.werr
			}
		}
		return b
	}
	return &Primed{
		release: func() Release { rel = release(); return rel },
		wait:    wait,
		abort:   func() { closeAll(); wg.Wait() },
	}, nil
}

// read reads one response into c.resp: at most maxHeader bytes until its headers are parsed, and
// at most maxBody bytes of its body.
func (c *h1conn) read(maxHeader, maxBody int64, method string) {
	headerCap := &capReader{r: c.conn, left: maxHeader}
	br := bufio.NewReader(headerCap)
	r := &c.resp
	if _, err := br.Peek(1); err != nil {
		r.Err = fmt.Errorf("no response: %w", err)
		return
	}
	r.Received = time.Now() // the first byte of the response, as the HTTP/2 side stamps its HEADERS
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		if errors.Is(err, errHeaderCap) {
			err = fmt.Errorf("response headers longer than %d bytes; not read further", maxHeader)
		} else {
			err = fmt.Errorf("malformed response: %w", err)
		}
		r.Err = err
		return
	}
	// The body has its own cap below; the header cap must not cut it.
	headerCap.left = math.MaxInt64
	r.Status, r.Header = resp.StatusCode, resp.Header
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if int64(len(body)) > maxBody {
		body, r.Truncated = body[:maxBody], true
		// Not resp.Body.Close, which reads a body to its end: the connection goes, and the rest of
		// the body with it.
		c.conn.Close()
	} else if err != nil {
		r.Err = fmt.Errorf("reading the response body: %w", err)
	}
	r.Body = body
}

// errHeaderCap is what a capReader returns once its bytes are spent.
var errHeaderCap = errors.New("header cap reached")

// capReader reads at most left bytes from r, then fails with errHeaderCap. http.ReadResponse has no
// limit of its own: a server sending endless headers would otherwise be read until memory runs out.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, errHeaderCap
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// h1Message serialises r as an HTTP/1.1 request. Content-Length is always explicit, so the server
// waits for exactly the bytes we send, the last one included.
func h1Message(r prepared) []byte {
	var b bytes.Buffer
	b.WriteString(r.Method + " " + r.url.RequestURI() + " HTTP/1.1\r\n")
	host := r.url.Host
	if h := r.Header.Get("Host"); h != "" {
		host = h
	}
	b.WriteString("Host: " + host + "\r\n")
	if r.Header.Get("User-Agent") == "" {
		b.WriteString("User-Agent: " + userAgent + "\r\n")
	}
	for _, k := range sortedHeaderKeys(r.Header) {
		switch strings.ToLower(k) {
		case "host", "content-length", "transfer-encoding", "connection":
			continue
		}
		for _, v := range r.Header[k] {
			// A header value with a line break would smuggle a second header or request.
			v = strings.NewReplacer("\r", " ", "\n", " ").Replace(v)
			b.WriteString(k + ": " + v + "\r\n")
		}
	}
	if len(r.Body) > 0 || bodyMethod(r.Method) {
		b.WriteString("Content-Length: " + strconv.Itoa(len(r.Body)) + "\r\n")
	}
	b.WriteString("Connection: close\r\n\r\n")
	b.Write(r.Body)
	return b.Bytes()
}
