// Package redistest starts private Redis servers for tests, on a free 127.0.0.1 port, with
// persistence off, stopped when the test ends. A test can Stop and Restart one to drop Redis.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"testing"
	"time"

	"github.com/tocsin/tocsin/internal/testenv"
)

const hint = "install Redis (apt-get install redis-server) or run make test-deps"

// Server is a running private Redis.
type Server struct {
	Addr string // host:port
	bin  string
	dir  string
	cmd  *exec.Cmd
}

// Start starts a server of the test's own.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin := testenv.LookPath(tb, hint, "redis-server", "/usr/bin/redis-server")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("redistest: finding a free port: %v", err)
	}
	s := &Server{Addr: l.Addr().String(), bin: bin, dir: tb.TempDir()}
	l.Close()
	if err := s.Restart(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// Restart starts the server after Stop, on the same address.
func (s *Server) Restart() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	s.cmd = exec.Command(s.bin, "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--protected-mode", "yes")
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("redistest: starting redis-server: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.Addr)
		cancel()
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("redistest: redis-server on %s did not accept connections within 10s: %w", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server, as a crash would.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}
