package race

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2conn is one HTTP/2 connection carrying a group of the batch.
type h2conn struct {
	conn  net.Conn
	tcp   *net.TCPConn
	state *h2state

	wmu    sync.Mutex // one writer at a time: the sender and the reader's ACKs
	wbuf   bytes.Buffer
	wfr    *http2.Framer // writes into wbuf
	henc   *hpack.Encoder
	hbuf   bytes.Buffer
	nextID uint32

	readerDone chan struct{}
}

// tlsRecordOverhead is what TLS adds to one record (TLS 1.2 AES-GCM: 5 header + 8 nonce + 16 tag;
// TLS 1.3 is 22), kept out of PacketBytes so the release still fits one segment.
const tlsRecordOverhead = 29

// openH2 connects (or takes the TLS connection Auto already made), exchanges prefaces and waits for
// the server's SETTINGS, which say how many streams one connection may carry.
func openH2(ctx context.Context, o Options, u *url.URL, tlsOn bool, conn net.Conn) (*h2conn, error) {
	if conn == nil {
		var err error
		if tlsOn {
			var tc *tls.Conn
			tc, err = dialTLS(ctx, o, u, []string{"h2"})
			if err == nil && tc.ConnectionState().NegotiatedProtocol != "h2" {
				tc.Close()
				err = fmt.Errorf("%s: %w (hint: use Mode LastByteH1 or Auto)", hostPort(u), ErrNoH2)
			}
			conn = tc
		} else {
			conn, err = dialTCP(ctx, o, u)
		}
		if err != nil {
			return nil, err
		}
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	c := &h2conn{conn: conn, tcp: tcpOf(conn), nextID: 1, readerDone: make(chan struct{})}
	c.wfr = http2.NewFramer(&c.wbuf, nil)
	c.henc = hpack.NewEncoder(&c.hbuf)
	c.state = newH2State(o.MaxHeaderBytes, o.MaxResponseBytes, c.write)

	// The preface, our SETTINGS and a connection window big enough for every response, in one write.
	err := c.write(func(fr *http2.Framer) error {
		c.wbuf.WriteString(http2.ClientPreface)
		if err := fr.WriteSettings(
			http2.Setting{ID: http2.SettingEnablePush, Val: 0},
			http2.Setting{ID: http2.SettingInitialWindowSize, Val: ourInitialWindow},
			http2.Setting{ID: http2.SettingMaxHeaderListSize, Val: uint32(min(o.MaxHeaderBytes, math.MaxUint32))},
		); err != nil {
			return err
		}
		return fr.WriteWindowUpdate(0, ourConnWindow-65535)
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("HTTP/2 preface: %w", err)
	}
	go func() {
		defer close(c.readerDone)
		c.state.readLoop(c.state.newFramer(nil, conn))
	}()
	select {
	case <-c.state.settingsSeen:
	case <-c.state.dead:
		c.close()
		return nil, fmt.Errorf("HTTP/2 connection to %s: %w (hint: for a cleartext server without h2c use Mode LastByteH1 or Auto)", hostPort(u), c.state.fatal)
	case <-ctx.Done():
		c.close()
		return nil, fmt.Errorf("waiting for the server's HTTP/2 SETTINGS: %w", ctx.Err())
	}
	return c, nil
}

// write builds frames into the buffer and sends them in one conn.Write.
func (c *h2conn) write(build func(fr *http2.Framer) error) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf.Reset()
	if err := build(c.wfr); err != nil {
		return err
	}
	_, err := c.conn.Write(c.wbuf.Bytes())
	return err
}

func (c *h2conn) close() {
	c.conn.Close()
	<-c.readerDone
}

// limits returns the server's stream limit (0 = none) and frame size.
func (c *h2conn) limits() (maxStreams, maxFrame uint32) {
	c.state.mu.Lock()
	defer c.state.mu.Unlock()
	return c.state.maxStreams, c.state.maxFrameSize
}

// prime opens a stream for r and sends everything but its final DATA frame, which it returns for the
// release. Body bytes wait for flow-control window; the last byte's window is reserved too, so the
// release never stalls on it.
func (c *h2conn) prime(ctx context.Context, idx int, r prepared) (final []byte, err error) {
	id := c.nextID
	c.nextID += 2
	block, err := c.headerBlock(r)
	if err != nil {
		return nil, err
	}
	st := &h2stream{idx: idx}
	s := c.state
	s.mu.Lock()
	st.sendWin = s.peerWindow
	s.streams[id] = st
	s.pending++
	s.mu.Unlock()

	_, maxFrame := c.limits()
	err = c.write(func(fr *http2.Framer) error {
		first := true
		for len(block) > 0 || first {
			n := min(len(block), int(maxFrame))
			frag := block[:n]
			block = block[n:]
			var err error
			if first {
				err = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: frag, EndHeaders: len(block) == 0})
				first = false
			} else {
				err = fr.WriteContinuation(id, len(block) == 0, frag)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	body := r.Body
	for len(body) > 1 { // everything but the last byte
		n, err := c.takeWindow(ctx, st, len(body)-1, int(maxFrame))
		if err != nil {
			return nil, err
		}
		chunk := body[:n]
		if err := c.write(func(fr *http2.Framer) error { return fr.WriteData(id, false, chunk) }); err != nil {
			return nil, err
		}
		body = body[n:]
	}
	if len(body) == 1 { // reserve the last byte's window so the release cannot stall on it
		if _, err := c.takeWindow(ctx, st, 1, 1); err != nil {
			return nil, err
		}
	}
	var out bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	if err := fr.WriteData(id, true, body); err != nil { // body is the last byte, or empty
		return nil, err
	}
	return out.Bytes(), nil
}

// takeWindow waits until some send window is open on st and the connection, and takes up to want
// bytes of it (and at most one frame).
func (c *h2conn) takeWindow(ctx context.Context, st *h2stream, want, maxFrame int) (int, error) {
	s := c.state
	for {
		s.mu.Lock()
		n := min(int64(want), st.sendWin, s.connWin, int64(maxFrame))
		closed := s.closed
		if n > 0 && !closed {
			st.sendWin -= n
			s.connWin -= n
		}
		s.mu.Unlock()
		if closed {
			return 0, fmt.Errorf("connection: %w", s.fatal)
		}
		if n > 0 {
			return int(n), nil
		}
		select {
		case <-s.windowMoved:
		case <-ctx.Done():
			return 0, fmt.Errorf("waiting for the server's flow-control window to send a request body: %w", ctx.Err())
		}
	}
}

// connection-specific headers are forbidden in HTTP/2 (RFC 9113 8.2.2).
var h2Forbidden = map[string]bool{"connection": true, "keep-alive": true, "proxy-connection": true, "transfer-encoding": true, "upgrade": true, "host": true, "content-length": true}

func (c *h2conn) headerBlock(r prepared) ([]byte, error) {
	c.hbuf.Reset()
	authority := r.url.Host
	if h := r.Header.Get("Host"); h != "" {
		authority = h
	}
	enc := func(name, value string) error {
		return c.henc.WriteField(hpack.HeaderField{Name: name, Value: value, Sensitive: name == "authorization" || name == "cookie"})
	}
	fields := [][2]string{
		{":method", r.Method},
		{":scheme", r.url.Scheme},
		{":authority", authority},
		{":path", r.url.RequestURI()},
	}
	for _, f := range fields {
		if err := enc(f[0], f[1]); err != nil {
			return nil, err
		}
	}
	if len(r.Body) > 0 || bodyMethod(r.Method) {
		if err := enc("content-length", strconv.Itoa(len(r.Body))); err != nil {
			return nil, err
		}
	}
	if r.Header.Get("User-Agent") == "" {
		if err := enc("user-agent", userAgent); err != nil {
			return nil, err
		}
	}
	for _, k := range sortedHeaderKeys(r.Header) {
		name := strings.ToLower(k)
		if h2Forbidden[name] {
			continue
		}
		for _, v := range r.Header[k] {
			if err := enc(name, v); err != nil {
				return nil, err
			}
		}
	}
	return bytes.Clone(c.hbuf.Bytes()), nil
}

const userAgent = "tocsin"

// bodyMethod says whether a method normally carries a body, so an empty one is declared as such.
func bodyMethod(m string) bool {
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch
}

// ping sends a PING and waits for its ACK: the server has then read every frame sent before it, and
// the connection's path is warm for the release.
func (c *h2conn) ping(ctx context.Context) error {
	var data [8]byte
	_, _ = rand.Read(data[:])
	if err := c.write(func(fr *http2.Framer) error { return fr.WritePing(false, data) }); err != nil {
		return err
	}
	for {
		select {
		case got := <-c.state.pingAck:
			if got == data {
				return nil
			}
		case <-c.state.dead:
			return fmt.Errorf("connection: %w", c.state.fatal)
		case <-ctx.Done():
			return fmt.Errorf("waiting for the PING ACK: %w", ctx.Err())
		}
	}
}

// h2group is the requests one connection releases in one write.
type h2group struct {
	conn    *h2conn
	idx     []int // batch indexes
	release []byte
	sent    time.Time
}

// primeH2 prepares the single-packet attack: every stream sent but its final frame, and every
// connection warmed with a PING. first, when set, is a TLS connection that negotiated h2.
func primeH2(ctx context.Context, o Options, pr []prepared, tlsOn bool, first net.Conn) (*Primed, error) {
	protocol := "h2c"
	if tlsOn {
		protocol = "h2"
	}
	u := pr[0].url
	c0, err := openH2(ctx, o, u, tlsOn, first)
	if err != nil {
		return nil, fmt.Errorf("race: %w", err)
	}
	conns := []*h2conn{c0}
	closeAll := func() {
		for _, c := range conns {
			c.close()
		}
	}
	ok := false
	defer func() {
		if !ok {
			closeAll()
		}
	}()

	// Groups: as many streams as the server allows on one connection and as many final frames as fit
	// one packet. Each group gets its own connection; the release writes them back to back.
	maxStreams, _ := c0.limits()
	room := o.PacketBytes
	if tlsOn {
		room -= tlsRecordOverhead
	}
	var groups [][]int
	var reason string
	var cur []int
	bytesIn := 0
	for i, r := range pr {
		size := 9 // frame header of the final DATA frame
		if len(r.Body) > 0 {
			size++
		}
		full := maxStreams > 0 && len(cur) >= int(maxStreams)
		over := len(cur) > 0 && bytesIn+size > room
		if full || over {
			if full {
				reason = fmt.Sprintf("the server allows %d concurrent streams per connection", maxStreams)
			} else if reason == "" {
				reason = fmt.Sprintf("the final frames need more than %d bytes, one packet's worth", room)
			}
			groups = append(groups, cur)
			cur, bytesIn = nil, 0
		}
		cur = append(cur, i)
		bytesIn += size
	}
	groups = append(groups, cur)

	gs := make([]*h2group, len(groups))
	for g, idx := range groups {
		c := c0
		if g > 0 {
			c, err = openH2(ctx, o, u, tlsOn, nil)
			if err != nil {
				return nil, fmt.Errorf("race: connection %d of %d: %w", g+1, len(groups), err)
			}
			conns = append(conns, c)
		}
		gs[g] = &h2group{conn: c, idx: idx}
		var rel bytes.Buffer
		for _, i := range idx {
			f, err := c.prime(ctx, i, pr[i])
			if err != nil {
				return nil, fmt.Errorf("race: request %d: %w", i, err)
			}
			rel.Write(f)
		}
		gs[g].release = rel.Bytes()
	}

	// Settle, then warm every connection with a PING: when its ACK is back the server has parsed every
	// HEADERS frame and waits only for the final frames.
	select {
	case <-time.After(o.Settle):
	case <-ctx.Done():
		return nil, fmt.Errorf("race: %w", ctx.Err())
	}
	for _, c := range conns {
		if err := c.ping(ctx); err != nil {
			return nil, fmt.Errorf("race: warm-up: %w", err)
		}
	}
	ok = true

	var rel Release
	release := func() Release {
		for _, c := range conns {
			c.state.mu.Lock()
			c.state.released = true
			c.state.maybeAllDone()
			c.state.mu.Unlock()
		}
		rel = Release{Mode: SinglePacketH2, Protocol: protocol, Writes: len(gs), Split: len(gs) > 1, Reason: reason, Segments: -1}
		before := make([]int, len(gs))
		for g, grp := range gs {
			before[g] = segsOut(grp.conn.tcp)
		}
		// The release: each group's final frames in one write (one TLS record), groups back to back.
		for _, grp := range gs {
			c := grp.conn
			c.wmu.Lock()
			grp.sent = time.Now()
			_, werr := c.conn.Write(grp.release)
			c.wmu.Unlock()
			if werr != nil {
				c.state.fail(fmt.Errorf("release write: %w", werr))
			}
			rel.Bytes += len(grp.release)
		}
		end := time.Now()
		segs := 0
		for g, grp := range gs {
			after := segsOut(grp.conn.tcp)
			if before[g] < 0 || after < 0 {
				segs = -1
				break
			}
			segs += after - before[g]
		}
		rel.Segments, rel.Start, rel.Duration = segs, gs[0].sent, end.Sub(gs[0].sent)
		if tlsOn {
			rel.Bytes += len(gs) * tlsRecordOverhead // an estimate: the record's exact size depends on the cipher
		}
		return rel
	}

	wait := func() *Batch {
		for _, c := range conns {
			select {
			case <-c.state.allDone:
			case <-ctx.Done():
			}
		}
		b := &Batch{Responses: make([]Response, len(pr)), Release: rel}
		for _, grp := range gs {
			c := grp.conn
			c.close() // stops the reader: the state is ours from here
			c.state.mu.Lock()
			for _, st := range c.state.streams {
				r := Response{Status: st.status, Header: st.header, Body: st.body, Truncated: st.truncated, Sent: grp.sent, Received: st.received, Err: st.err}
				if !st.done {
					r.Err = fmt.Errorf("no complete response: %w", context.Cause(ctx))
					if ctx.Err() == nil {
						r.Err = errors.New("no complete response")
					}
				}
				b.Responses[st.idx] = r
			}
			c.state.mu.Unlock()
		}
		return b
	}
	return &Primed{release: release, wait: wait, abort: closeAll}, nil
}
