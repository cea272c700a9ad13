package client

import (
	"net/http/httptrace"
	"sync"
	"time"
)

// stamps records when the last hop of a request was sent and answered. The transport calls the trace
// hooks from its own goroutines, hence the mutex.
type stamps struct {
	mu       sync.Mutex
	sent     time.Time
	received time.Time
}

// stampsKey carries a request's *stamps in its context to the guard.
type stampsKey struct{}

// attempt is called by the guard right before the transport takes the request: the fallback Sent if
// no connection is ever reported. A new hop also forgets the previous hop's response.
func (s *stamps) attempt() {
	now := time.Now()
	s.mu.Lock()
	s.sent, s.received = now, time.Time{}
	s.mu.Unlock()
}

func (s *stamps) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		// GotConn fires once the request has a connection and the transport is about to write on
		// it: later than attempt (no dial or TLS handshake included) and before any byte is written.
		// WroteRequest would be later still but is reported after the body is flushed, which for a
		// large body is well after the server could have started acting on the headers.
		GotConn: func(httptrace.GotConnInfo) {
			now := time.Now()
			s.mu.Lock()
			s.sent = now
			s.mu.Unlock()
		},
		GotFirstResponseByte: func() {
			now := time.Now()
			s.mu.Lock()
			s.received = now
			s.mu.Unlock()
		},
	}
}

func (s *stamps) get() (sent, received time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sent, s.received
}
