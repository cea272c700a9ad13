package race

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// A header list over the cap is an error, not a response with the headers the decoder kept. The
// list crosses the cap in its last field, so the framer hands the stream a truncated list instead of
// failing the connection.
func TestH2HeaderListOverCap(t *testing.T) {
	const maxHeader = 1 << 20
	var hb bytes.Buffer
	enc := hpack.NewEncoder(&hb)
	field := func(name, value string) int {
		_ = enc.WriteField(hpack.HeaderField{Name: name, Value: value})
		return int(hpack.HeaderField{Name: name, Value: value}.Size())
	}
	size := field(":status", "200")
	for i := 0; size < maxHeader-500; i++ {
		size += field(fmt.Sprintf("x-filler-%d", i), strings.Repeat("f", 1000))
	}
	field("x-last", strings.Repeat("l", 1000))
	var in bytes.Buffer
	fr := http2.NewFramer(&in, nil)
	block := hb.Bytes()
	for first := true; len(block) > 0; first = false {
		n := min(len(block), ourMaxFrameSize)
		var err error
		if first {
			err = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block[:n], EndHeaders: n == len(block), EndStream: true})
		} else {
			err = fr.WriteContinuation(1, n == len(block), block[:n])
		}
		if err != nil {
			t.Fatal(err)
		}
		block = block[n:]
	}
	s, out := runCapped(in.Bytes(), maxHeader, 1<<20)
	st := s.streams[1]
	if st.err == nil || !strings.Contains(st.err.Error(), "headers longer than 1048576 bytes") {
		t.Fatalf("stream 1: status %d, %d headers, err %v; want an error naming the header cap", st.status, len(st.header), st.err)
	}
	if !sentRST(t, out, 1) {
		t.Error("no RST_STREAM for the stream over the header cap")
	}
}

// A body over the cap ends the stream there, marked truncated, and the server is told to stop: the
// rest is not read.
func TestH2BodyOverCapStopsReading(t *testing.T) {
	var hb bytes.Buffer
	_ = hpack.NewEncoder(&hb).WriteField(hpack.HeaderField{Name: ":status", Value: "200"})
	var in bytes.Buffer
	fr := http2.NewFramer(&in, nil)
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: hb.Bytes(), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	for range 4 { // no END_STREAM: a body that does not end
		if err := fr.WriteData(1, false, bytes.Repeat([]byte("b"), 1000)); err != nil {
			t.Fatal(err)
		}
	}
	s, out := runCapped(in.Bytes(), 1<<20, 1500)
	st := s.streams[1]
	// Finished before the input ran out, so without the error the end of the input gives every
	// stream still open.
	if st.err != nil || !st.truncated || len(st.body) != 1500 {
		t.Fatalf("stream 1: err %v, truncated %v, %d body bytes; want a clean cut at 1500", st.err, st.truncated, len(st.body))
	}
	if !sentRST(t, out, 1) {
		t.Error("no RST_STREAM for the stream cut at the body cap")
	}
}

// sentRST reports whether the frames in out reset stream id.
func sentRST(t *testing.T, out *bytes.Buffer, id uint32) bool {
	t.Helper()
	fr := http2.NewFramer(nil, bytes.NewReader(out.Bytes()))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return false
		}
		if rst, ok := f.(*http2.RSTStreamFrame); ok && rst.StreamID == id {
			return true
		}
	}
}
