package race

import (
	"bytes"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// serverBytes builds what a server might send: its SETTINGS, a response on stream 1 split over
// HEADERS and CONTINUATION, a DATA frame, a reset of stream 3, and a GOAWAY.
func serverBytes(t testing.TB) []byte {
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	for _, f := range []hpack.HeaderField{{Name: ":status", Value: "200"}, {Name: "content-type", Value: "text/plain"}, {Name: "x-long", Value: string(bytes.Repeat([]byte("v"), 40))}} {
		_ = enc.WriteField(f)
	}
	block := hb.Bytes()
	var out bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100}, http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}))
	must(fr.WriteWindowUpdate(0, 1000))
	must(fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:10]}))
	must(fr.WriteContinuation(1, true, block[10:]))
	must(fr.WriteData(1, false, []byte("hello ")))
	must(fr.WriteDataPadded(1, true, []byte("world"), []byte{0, 0, 0}))
	must(fr.WritePing(true, [8]byte{1}))
	must(fr.WriteRSTStream(3, http2.ErrCodeRefusedStream))
	must(fr.WriteGoAway(1, http2.ErrCodeNo, nil))
	return out.Bytes()
}

// run feeds data to a connection state with streams 1, 3 and 5 open, as if the server had sent it.
func run(data []byte, maxBody int64) *h2state {
	s, _ := runCapped(data, 1<<20, maxBody)
	return s
}

// runCapped is run with a header cap too; it also returns the frames the state wrote back.
func runCapped(data []byte, maxHeader, maxBody int64) (*h2state, *bytes.Buffer) {
	var sink bytes.Buffer
	s := newH2State(maxHeader, maxBody, func(build func(*http2.Framer) error) error {
		return build(http2.NewFramer(&sink, nil))
	})
	for i, id := range []uint32{1, 3, 5} {
		s.streams[id] = &h2stream{idx: i, sendWin: 65535}
		s.pending++
	}
	s.released = true
	s.readLoop(s.newFramer(nil, bytes.NewReader(data)))
	return s, &sink
}

func TestParseServerFrames(t *testing.T) {
	s := run(serverBytes(t), 1<<20)
	st := s.streams[1]
	if !st.done || st.err != nil || st.status != 200 || string(st.body) != "hello world" || st.header.Get("Content-Type") != "text/plain" {
		t.Errorf("stream 1: done %v err %v status %d body %q header %v", st.done, st.err, st.status, st.body, st.header)
	}
	if st := s.streams[3]; !st.done || st.err == nil {
		t.Errorf("stream 3 was reset, got done %v err %v", st.done, st.err)
	}
	if st := s.streams[5]; !st.done || st.err == nil {
		t.Errorf("stream 5 is above GOAWAY's last stream, got done %v err %v", st.done, st.err)
	}
	if s.maxStreams != 100 || s.peerWindow != 1<<20 || s.connWin != 65535+1000 {
		t.Errorf("settings: streams %d window %d conn %d", s.maxStreams, s.peerWindow, s.connWin)
	}
	if s.streams[1].sendWin != 1<<20 {
		t.Errorf("stream window %d after SETTINGS_INITIAL_WINDOW_SIZE, want %d", s.streams[1].sendWin, 1<<20)
	}
	// A small cap keeps the body short and says so.
	if st := run(serverBytes(t), 4).streams[1]; string(st.body) != "hell" || !st.truncated {
		t.Errorf("capped body %q truncated %v", st.body, st.truncated)
	}
}

// FuzzServerFrames feeds arbitrary server bytes to the response parser: it must not panic, must keep
// bodies within the cap, and must finish every stream when the input ends.
func FuzzServerFrames(f *testing.F) {
	f.Add(serverBytes(f))
	f.Add([]byte{})
	f.Add(serverBytes(f)[:30])
	f.Fuzz(func(t *testing.T, data []byte) {
		const maxBody = 16
		s := run(data, maxBody)
		if s.pending != 0 {
			t.Fatalf("%d streams still pending after the input ended", s.pending)
		}
		for id, st := range s.streams {
			if len(st.body) > maxBody {
				t.Fatalf("stream %d body %d bytes over the cap %d", id, len(st.body), maxBody)
			}
			if st.err == nil && (st.status < 200 || st.status > 999) {
				t.Fatalf("stream %d finished without error but with status %d", id, st.status)
			}
		}
	})
}
