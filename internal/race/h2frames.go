package race

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// This file is the part of the HTTP/2 client that reads what the server sends: untrusted input. It
// keeps no state but what handle updates under mu, so a fuzz test can drive it with arbitrary bytes.

// Our side's settings. The stream window is large so that responses up to the body cap need no
// WINDOW_UPDATE (a write that, right after the release, would blur its segment count).
const (
	ourInitialWindow = 16 << 20
	ourConnWindow    = 1 << 30
	ourMaxFrameSize  = 16 << 10 // the protocol default; we read nothing larger
	maxWindow        = 1<<31 - 1
)

// h2stream is one request's stream.
type h2stream struct {
	idx       int // index in the batch
	status    int
	header    http.Header
	body      []byte
	truncated bool
	received  time.Time
	consumed  int64 // DATA bytes since our last WINDOW_UPDATE for the stream
	sendWin   int64 // what we may still send on it
	done      bool
	err       error
}

// h2state is a connection's view of the server, fed frame by frame by handle.
type h2state struct {
	maxHeader int64 // what the framer reading for this state decodes of a header list
	maxBody   int64
	// write sends frames the protocol makes us answer with (SETTINGS and PING ACKs, WINDOW_UPDATE).
	write func(build func(fr *http2.Framer) error) error

	mu           sync.Mutex
	maxStreams   uint32 // server's SETTINGS_MAX_CONCURRENT_STREAMS; 0 = not limited
	peerWindow   int64  // server's SETTINGS_INITIAL_WINDOW_SIZE
	maxFrameSize uint32 // server's SETTINGS_MAX_FRAME_SIZE
	connWin      int64  // connection-level send window
	connConsumed int64
	streams      map[uint32]*h2stream
	pending      int
	settled      bool // the server's first SETTINGS arrived
	goAway       bool

	settingsSeen chan struct{} // closed on the server's first SETTINGS
	pingAck      chan [8]byte  // PING ACK payloads
	windowMoved  chan struct{} // a WINDOW_UPDATE or SETTINGS may have opened a window
	allDone      chan struct{} // closed when no stream is pending after the release
	released     bool          // allDone may close (streams are all registered)
	closed       bool          // the connection failed; every stream is finished
	fatal        error         // why
	dead         chan struct{} // closed when closed becomes true
}

func newH2State(maxHeader, maxBody int64, write func(func(*http2.Framer) error) error) *h2state {
	return &h2state{
		maxHeader:    maxHeader,
		maxBody:      maxBody,
		write:        write,
		peerWindow:   65535,
		maxFrameSize: 16384,
		connWin:      65535,
		streams:      map[uint32]*h2stream{},
		settingsSeen: make(chan struct{}),
		pingAck:      make(chan [8]byte, 4),
		windowMoved:  make(chan struct{}, 1),
		allDone:      make(chan struct{}),
		dead:         make(chan struct{}),
	}
}

// newFramer returns a framer that reads server frames for s with hpack decoding and our size
// limits. Past s.maxHeader of decoded header list it stops decoding and marks the frame Truncated,
// and it closes the connection on a header block far over that (CONTINUATION floods).
func (s *h2state) newFramer(w io.Writer, r io.Reader) *http2.Framer {
	fr := http2.NewFramer(w, r)
	fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	fr.MaxHeaderListSize = uint32(min(s.maxHeader, math.MaxUint32))
	fr.SetMaxReadFrameSize(ourMaxFrameSize)
	return fr
}

// readLoop reads and handles frames until the connection fails or closes.
func (s *h2state) readLoop(fr *http2.Framer) {
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				// A malformed response on one stream (bad header field, oversize header list) spoils
				// that stream only.
				s.mu.Lock()
				if st := s.streams[se.StreamID]; st != nil {
					s.finish(st, fmt.Errorf("malformed response: %v", se))
				}
				s.mu.Unlock()
				continue
			}
			s.fail(err)
			return
		}
		if err := s.handle(f); err != nil {
			s.fail(err)
			return
		}
	}
}

// handle applies one frame from the server. An error is a connection error.
func (s *h2state) handle(f http2.Frame) error {
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if f.IsAck() {
			return nil
		}
		return s.settings(f)
	case *http2.PingFrame:
		if f.IsAck() {
			select {
			case s.pingAck <- f.Data:
			default:
			}
			return nil
		}
		return s.write(func(fr *http2.Framer) error { return fr.WritePing(true, f.Data) })
	case *http2.WindowUpdateFrame:
		s.mu.Lock()
		if f.StreamID == 0 {
			s.connWin = min(s.connWin+int64(f.Increment), maxWindow)
		} else if st := s.streams[f.StreamID]; st != nil {
			st.sendWin = min(st.sendWin+int64(f.Increment), maxWindow)
		}
		s.mu.Unlock()
		s.nudge()
	case *http2.MetaHeadersFrame:
		s.headers(f)
	case *http2.DataFrame:
		return s.data(f)
	case *http2.RSTStreamFrame:
		s.mu.Lock()
		if st := s.streams[f.StreamID]; st != nil {
			s.finish(st, fmt.Errorf("server reset the stream: %v", f.ErrCode))
		}
		s.mu.Unlock()
	case *http2.GoAwayFrame:
		s.mu.Lock()
		s.goAway = true
		for id, st := range s.streams {
			if id > f.LastStreamID {
				s.finish(st, fmt.Errorf("server sent GOAWAY (%v) before processing the stream", f.ErrCode))
			}
		}
		s.mu.Unlock()
	case *http2.PushPromiseFrame:
		return errors.New("server pushed a stream although SETTINGS_ENABLE_PUSH is 0")
	}
	return nil // other frames (PRIORITY, unknown types) carry nothing we use
}

func (s *h2state) settings(f *http2.SettingsFrame) error {
	s.mu.Lock()
	err := f.ForeachSetting(func(set http2.Setting) error {
		switch set.ID {
		case http2.SettingMaxConcurrentStreams:
			s.maxStreams = set.Val
			if set.Val == 0 {
				s.maxStreams = 0
				return errors.New("server allows no concurrent streams (SETTINGS_MAX_CONCURRENT_STREAMS 0)")
			}
		case http2.SettingInitialWindowSize:
			// RFC 9113 6.9.2: the change applies to the windows of open streams too.
			delta := int64(set.Val) - s.peerWindow
			s.peerWindow = int64(set.Val)
			for _, st := range s.streams {
				st.sendWin += delta
			}
		case http2.SettingMaxFrameSize:
			s.maxFrameSize = set.Val
		}
		return nil
	})
	first := !s.settled
	s.settled = true
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if first {
		close(s.settingsSeen)
	}
	s.nudge()
	return s.write(func(fr *http2.Framer) error { return fr.WriteSettingsAck() })
}

func (s *h2state) headers(f *http2.MetaHeadersFrame) {
	now := time.Now()
	s.mu.Lock()
	st := s.streams[f.StreamID]
	if st == nil || st.done {
		s.mu.Unlock()
		return
	}
	if f.Truncated {
		// The framer stopped decoding at the cap: what it kept is not the whole header list.
		s.finish(st, fmt.Errorf("response headers longer than %d bytes; not read further", s.maxHeader))
		s.mu.Unlock()
		s.cancel(f.StreamID)
		return
	}
	defer s.mu.Unlock()
	if st.status != 0 { // trailers: nothing we report, but they may end the stream
		if f.StreamEnded() {
			s.finish(st, nil)
		}
		return
	}
	code, err := strconv.Atoi(f.PseudoValue("status"))
	if err != nil || code < 100 || code > 999 {
		s.finish(st, fmt.Errorf("malformed response: :status %q", f.PseudoValue("status")))
		return
	}
	if code < 200 { // 1xx: informational, the real response follows
		if f.StreamEnded() {
			s.finish(st, fmt.Errorf("malformed response: stream ended on informational status %d", code))
		}
		return
	}
	st.status = code
	st.received = now
	st.header = make(http.Header, len(f.Fields))
	for _, hf := range f.RegularFields() {
		st.header.Add(http.CanonicalHeaderKey(hf.Name), hf.Value)
	}
	if f.StreamEnded() {
		s.finish(st, nil)
	}
}

func (s *h2state) data(f *http2.DataFrame) error {
	n := int64(f.Length) // padding counts against flow control too
	s.mu.Lock()
	s.connConsumed += n
	var connInc, streamInc uint32
	if s.connConsumed >= ourConnWindow/2 {
		connInc, s.connConsumed = uint32(s.connConsumed), 0
	}
	st := s.streams[f.StreamID]
	cut := false
	if st != nil && !st.done {
		if st.status == 0 {
			s.finish(st, errors.New("malformed response: DATA before HEADERS"))
		} else {
			d := f.Data()
			take := min(int64(len(d)), max(s.maxBody-int64(len(st.body)), 0))
			st.body = append(st.body, d[:take]...)
			st.consumed += n
			switch {
			case int64(len(d)) > take:
				// Past the cap: the response is done as far as we are concerned, and the server is
				// told to stop sending it.
				st.truncated, cut = true, true
				s.finish(st, nil)
			case f.StreamEnded():
				s.finish(st, nil)
			case st.consumed >= ourInitialWindow/2:
				streamInc, st.consumed = uint32(st.consumed), 0
			}
		}
	}
	s.mu.Unlock()
	if cut {
		s.cancel(f.StreamID)
	}
	if connInc == 0 && streamInc == 0 {
		return nil
	}
	return s.write(func(fr *http2.Framer) error {
		if connInc > 0 {
			if err := fr.WriteWindowUpdate(0, connInc); err != nil {
				return err
			}
		}
		if streamInc > 0 {
			return fr.WriteWindowUpdate(f.StreamID, streamInc)
		}
		return nil
	})
}

// cancel asks the server to stop sending a stream we have finished reading. A failed write is left
// to the read loop, which sees the connection fail.
func (s *h2state) cancel(id uint32) {
	_ = s.write(func(fr *http2.Framer) error { return fr.WriteRSTStream(id, http2.ErrCodeCancel) })
}

// finish ends a stream once; s.mu is held.
func (s *h2state) finish(st *h2stream, err error) {
	if st.done {
		return
	}
	st.done, st.err = true, err
	s.pending--
	s.maybeAllDone()
}

func (s *h2state) maybeAllDone() {
	if s.released && s.pending == 0 {
		select {
		case <-s.allDone:
		default:
			close(s.allDone)
		}
	}
}

// fail ends every stream still open: the connection is gone.
func (s *h2state) fail(err error) {
	if errors.Is(err, io.EOF) {
		err = errors.New("server closed the connection")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	s.closed, s.fatal = true, err
	close(s.dead)
	for _, st := range s.streams {
		s.finish(st, fmt.Errorf("connection: %w", err))
	}
	s.nudge()
}

// nudge wakes a writer waiting for a window.
func (s *h2state) nudge() {
	select {
	case s.windowMoved <- struct{}{}:
	default:
	}
}
