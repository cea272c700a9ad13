package racebench

import (
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// jitterLink serves the recorder behind a userspace relay on loopback that delays everything it
// forwards by 10 ms +- 3 ms (uniform), per chunk and in each direction, keeping order within a
// connection as TCP would. It stands in for netem where the kernel has none (this project's CI
// kernels are built without CONFIG_NET_SCH_NETEM). A chunk is what one read returns, so bytes the
// client wrote together (a single-packet release) travel together, as one segment would, while
// requests written separately get independent delays: the jitter that naive races suffer on a real
// link.
func jitterLink() (*link, error) {
	ln1, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		ln1.Close()
		return nil, err
	}
	inner := startServers("jitter-inner", ln1, ln2)
	tlsRelay, err := newRelay(ln1.Addr().String())
	if err != nil {
		inner.close()
		return nil, err
	}
	clearRelay, err := newRelay(ln2.Addr().String())
	if err != nil {
		tlsRelay.close()
		inner.close()
		return nil, err
	}
	return &link{
		name:     "userspace jitter 10ms+-3ms",
		tlsURL:   "https://" + tlsRelay.ln.Addr().String(),
		clearURL: "http://" + clearRelay.ln.Addr().String(),
		tlsCfg:   inner.tlsCfg,
		rec:      inner.rec,
		close: func() {
			tlsRelay.close()
			clearRelay.close()
			inner.close()
		},
	}, nil
}

const (
	jitterBase   = 10 * time.Millisecond
	jitterSpread = 3 * time.Millisecond
)

// relay accepts on a loopback port and forwards each connection to target through delay lines.
type relay struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[net.Conn]bool // open, to close at the end
}

func newRelay(target string) (*relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &relay{ln: ln, target: target, conns: map[net.Conn]bool{}}
	r.wg.Add(1)
	go r.accept()
	return r, nil
}

func (r *relay) accept() {
	defer r.wg.Done()
	for {
		in, err := r.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", r.target)
		if err != nil {
			in.Close()
			continue
		}
		r.mu.Lock()
		r.conns[in], r.conns[out] = true, true
		r.mu.Unlock()
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			var pair sync.WaitGroup
			pair.Go(func() { delayLine(out, in) })
			pair.Go(func() { delayLine(in, out) })
			pair.Wait()
			// Both directions ended: release the descriptors now, not when the run ends (a batch
			// of 100 fresh connections would otherwise exhaust them within a few batches).
			in.Close()
			out.Close()
			r.mu.Lock()
			delete(r.conns, in)
			delete(r.conns, out)
			r.mu.Unlock()
		}()
	}
}

func (r *relay) close() {
	r.ln.Close()
	r.mu.Lock()
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// delayLine copies src to dst, releasing each chunk read at its arrival plus a jittered delay, but
// never before the chunk ahead of it.
func delayLine(dst, src net.Conn) {
	type chunk struct {
		data []byte
		at   time.Time
	}
	queue := make(chan chunk, 1024)
	go func() {
		defer close(queue)
		var last time.Time
		for {
			buf := make([]byte, 64<<10)
			n, err := src.Read(buf)
			if n > 0 {
				delay := jitterBase - jitterSpread + time.Duration(rand.Int64N(int64(2*jitterSpread)+1))
				at := time.Now().Add(delay)
				if at.Before(last) {
					at = last
				}
				last = at
				queue <- chunk{buf[:n], at}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range queue {
		time.Sleep(time.Until(c.at))
		if _, err := dst.Write(c.data); err != nil {
			break
		}
	}
	// Let the other side see the end, and drain what is still queued so the reader can exit.
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	for range queue {
	}
	_, _ = io.Copy(io.Discard, src)
}
