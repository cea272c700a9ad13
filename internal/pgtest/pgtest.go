// Package pgtest starts private PostgreSQL servers for tests: one per test package (Shared, stopped
// by Main), or one per test (Start) for tests that stop and restart it. Each server lives in a
// temporary directory, listens on a free 127.0.0.1 port only, runs with fsync off, and trusts local
// connections: it is for tests, never for data.
package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tocsin/tocsin/internal/testenv"
)

const hint = "install PostgreSQL 15 (apt-get install postgresql) or run make test-deps"

// binDir is where Debian installs the server programs, which are not on PATH.
const binDir = "/usr/lib/postgresql/15/bin"

// Server is a running private PostgreSQL.
type Server struct {
	Port    int
	dir     string // holds data/ and the socket directory
	bin     string
	account *syscall.Credential // the server refuses to run as root
	owned   bool                // dir was made here and is removed on Close
}

var shared struct {
	once sync.Once
	srv  *Server
	err  error
}

// Main runs the package's tests and then stops the shared server, if a test started one. Call it
// from TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if shared.srv != nil {
		shared.srv.Close()
	}
	return code
}

// Shared returns the package's server, starting it on first use. Tests that use it must take a
// database of their own (NewDatabase) so they do not see each other's rows.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	lookBinaries(tb)
	shared.once.Do(func() {
		dir, err := os.MkdirTemp("", "pgtest-")
		if err != nil {
			shared.err = err
			return
		}
		shared.srv, shared.err = start(dir, true)
	})
	if shared.err != nil {
		tb.Fatalf("pgtest: starting the shared PostgreSQL: %v", shared.err)
	}
	return shared.srv
}

// Start starts a server of the test's own, stopped when the test ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	lookBinaries(tb)
	s, err := start(tb.TempDir(), false)
	if err != nil {
		tb.Fatalf("pgtest: starting PostgreSQL: %v", err)
	}
	tb.Cleanup(s.Close)
	return s
}

func lookBinaries(tb testing.TB) {
	tb.Helper()
	testenv.LookPath(tb, hint, "initdb", filepath.Join(binDir, "initdb"))
	if _, err := user.Lookup("postgres"); err != nil {
		testenv.Missing(tb, `the "postgres" system user`, hint)
	}
}

func start(dir string, owned bool) (*Server, error) {
	account, err := postgresAccount()
	if err != nil {
		return nil, err
	}
	s := &Server{dir: dir, bin: binDir, account: account, owned: owned}
	if os.Geteuid() == 0 {
		// The server's user must reach dir: temporary directories are private to their creator.
		for d := dir; d != "/" && d != "."; d = filepath.Dir(d) {
			if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o001 == 0 {
				if err := os.Chmod(d, st.Mode().Perm()|0o711); err != nil {
					return nil, fmt.Errorf("making %s reachable by the postgres user: %w", d, err)
				}
			}
		}
		if err := os.Chown(dir, int(account.Uid), int(account.Gid)); err != nil {
			return nil, fmt.Errorf("handing %s to the postgres user: %w", dir, err)
		}
	}
	out, err := s.command("initdb", "-D", s.dataDir(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync").CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	if err := os.Mkdir(s.socketDir(), 0o755); err != nil {
		return nil, err
	}
	if os.Geteuid() == 0 {
		os.Chown(s.socketDir(), int(account.Uid), int(account.Gid))
	}
	// A port picked free can be taken by someone else before the server binds it: try a few.
	for attempt := 0; ; attempt++ {
		if s.Port, err = freePort(); err != nil {
			return nil, err
		}
		if err = s.Restart(); err == nil || attempt == 2 {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

func postgresAccount() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil // run as whoever we are; initdb refuses only root
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL refuses to run as root and there is no postgres user: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (s *Server) dataDir() string   { return filepath.Join(s.dir, "data") }
func (s *Server) socketDir() string { return filepath.Join(s.dir, "sock") }

func (s *Server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	if s.account != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.account}
	}
	return cmd
}

// Restart starts the server after Stop (or for the first time) on the same port and data, and
// waits until it accepts connections.
func (s *Server) Restart() error {
	opts := strings.Join([]string{
		"-c listen_addresses=127.0.0.1",
		"-p " + strconv.Itoa(s.Port),
		"-k " + s.socketDir(),
		"-c fsync=off -c full_page_writes=off", // fsync off survives a process crash, not an OS one
		"-c max_connections=200",
	}, " ")
	out, err := s.command("pg_ctl", "start", "-w", "-t", "30", "-D", s.dataDir(), "-o", opts,
		"-l", filepath.Join(s.dir, "server.log")).CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
		return fmt.Errorf("pg_ctl start on port %d: %v\n%s\n%s", s.Port, err, out, lastLines(string(log), 10))
	}
	return nil
}

// Stop stops the server at once, as a crash would: open transactions are lost, committed ones stay
// (synchronous_commit stays on for that).
func (s *Server) Stop() error {
	out, err := s.command("pg_ctl", "stop", "-m", "immediate", "-w", "-D", s.dataDir()).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %v\n%s", err, out)
	}
	return nil
}

// Close stops the server and removes its files.
func (s *Server) Close() {
	if _, err := os.Stat(filepath.Join(s.dataDir(), "postmaster.pid")); err == nil {
		s.Stop()
	}
	if s.owned {
		os.RemoveAll(s.dir)
	}
}

// URL returns the connection string of database db.
func (s *Server) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.Port, db)
}

var dbSeq struct {
	sync.Mutex
	n int
}

// NewDatabase creates an empty database for the test, dropped when it ends, and returns its URL.
func (s *Server) NewDatabase(tb testing.TB) string {
	tb.Helper()
	dbSeq.Lock()
	dbSeq.n++
	name := fmt.Sprintf("t%d_%d", os.Getpid(), dbSeq.n)
	dbSeq.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.exec(ctx, "CREATE DATABASE "+name); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// A test that stopped the server leaves nothing to drop.
		_ = s.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
	})
	return s.URL(name)
}

func (s *Server) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.URL("postgres"))
	if err != nil {
		return fmt.Errorf("connecting to the server on port %d: %w", s.Port, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
