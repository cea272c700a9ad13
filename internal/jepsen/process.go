package jepsen

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ReplicaEnv, set to a ReplicaConfig in JSON, makes a test binary a replica process: the package's
// TestMain calls ServeReplica instead of running the tests. StartProcess sets it.
const ReplicaEnv = "TOCSIN_JEPSEN_REPLICA"

// readyPrefix starts the line a replica process prints on stdout once it serves.
const readyPrefix = "jepsen replica serving on "

// ServeReplica is a replica process's main: it starts the replica that config (a ReplicaConfig in
// JSON) describes on 127.0.0.1, prints its URL on stdout, and serves until the process is killed or
// its stdin closes (its parent is gone). It returns the exit code.
func ServeReplica(config string) int {
	var cfg ReplicaConfig
	if err := json.Unmarshal([]byte(config), &cfg); err != nil {
		fmt.Fprintf(os.Stderr, "jepsen replica: %s: %v\n", ReplicaEnv, err)
		return 2
	}
	if cfg.Clock == nil {
		fmt.Fprintf(os.Stderr, "jepsen replica %s: no clock in the config\n", cfg.Name)
		return 2
	}
	r, err := StartReplica(context.Background(), cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "jepsen replica: %v\n", err)
		return 1
	}
	fmt.Printf("%s%s\n", readyPrefix, r.URL())
	io.Copy(io.Discard, os.Stdin)
	return 0 // exiting ends the sessions, as a kill does: nothing to wait for
}

// Process is a replica in a process of its own: the running test binary started again with
// ReplicaEnv. Kill ends it with SIGKILL, whatever it is doing; Restart starts a new process.
type Process struct {
	cfg    ReplicaConfig
	output tail // the stderr of every incarnation

	mu  sync.Mutex
	url string
	cur *incarnation // nil while killed
}

type incarnation struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser // held open while the process should run
	exited chan struct{}  // closed once the process has exited and been reaped
}

// StartProcess starts a replica process. The caller must Close it.
func StartProcess(ctx context.Context, cfg ReplicaConfig) (*Process, error) {
	p := &Process{cfg: cfg}
	if err := p.Restart(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// Config returns the replica's configuration.
func (p *Process) Config() ReplicaConfig { return p.cfg }

// URL returns the replica's current base URL; it changes when the replica restarts.
func (p *Process) URL() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.url
}

// Pid returns the process ID of the running replica, or 0 while it is killed.
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return 0
	}
	return p.cur.cmd.Process.Pid
}

// Output returns what the replica's processes wrote on stderr (the last 256 KiB): nothing, unless
// something went wrong, such as a data race the race detector reported.
func (p *Process) Output() string { return p.output.String() }

// Restart starts a new replica process after Kill (or for the first time) and waits until it
// serves.
func (p *Process) Restart(ctx context.Context) error {
	p.mu.Lock()
	running := p.cur != nil
	p.mu.Unlock()
	if running {
		return fmt.Errorf("replica %s: already running", p.cfg.Name)
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("replica %s: finding the test binary: %w", p.cfg.Name, err)
	}
	config, err := json.Marshal(p.cfg)
	if err != nil {
		return fmt.Errorf("replica %s: %w", p.cfg.Name, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("replica %s: %w", p.cfg.Name, err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), ReplicaEnv+"="+string(config))
	cmd.Stdout = outW
	cmd.Stderr = &p.output
	// The replica serves until its stdin closes, which happens when this process ends, however it
	// ends: a test binary that dies leaves no replica behind.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return fmt.Errorf("replica %s: %w", p.cfg.Name, err)
	}
	err = cmd.Start()
	outW.Close()
	if err != nil {
		outR.Close()
		return fmt.Errorf("replica %s: starting %s: %w", p.cfg.Name, exe, err)
	}
	inc := &incarnation{cmd: cmd, stdin: stdin, exited: make(chan struct{})}
	go func() {
		cmd.Wait()
		close(inc.exited)
	}()
	ready := make(chan string, 1)
	go func() {
		defer outR.Close()
		br := bufio.NewReader(outR)
		line, err := br.ReadString('\n')
		if err == nil {
			ready <- strings.TrimSuffix(line, "\n")
		}
		close(ready)
		io.Copy(&p.output, br) // the replica writes nothing else there; keep it if it does
	}()

	fail := func(format string, args ...any) error {
		cmd.Process.Signal(syscall.SIGKILL)
		<-inc.exited
		msg := fmt.Sprintf(format, args...)
		if out := strings.TrimSpace(p.output.String()); out != "" {
			msg += "\n" + out
		}
		return fmt.Errorf("replica %s: %s", p.cfg.Name, msg)
	}
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	var line string
	select {
	case l, ok := <-ready:
		if !ok {
			<-inc.exited // it closed its stdout: it is exiting
			return fail("the process exited before serving (%v)", cmd.ProcessState)
		}
		line = l
	case <-timeout.C:
		return fail("not serving after 30 s")
	case <-ctx.Done():
		return fail("%v", ctx.Err())
	}
	base, err := replicaURL(line)
	if err != nil {
		return fail("%v", err)
	}
	p.mu.Lock()
	p.url, p.cur = base, inc
	p.mu.Unlock()
	return nil
}

// replicaURL reads the ready line and accepts only an http URL on 127.0.0.1.
func replicaURL(line string) (string, error) {
	s, ok := strings.CutPrefix(line, readyPrefix)
	if !ok {
		return "", fmt.Errorf("unexpected first line %q", line)
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "" || u.Path != "" {
		return "", fmt.Errorf("the replica announced %q, not an http URL on 127.0.0.1", s)
	}
	return s, nil
}

// Kill sends the replica process SIGKILL and returns once it is gone. Nothing in it runs after
// the signal: no deferred rollback, no connection closed politely. The kernel closes its sockets,
// so PostgreSQL sees its sessions end and rolls back their transactions, releasing their locks.
func (p *Process) Kill() {
	p.mu.Lock()
	inc := p.cur
	p.cur = nil
	p.mu.Unlock()
	if inc == nil {
		return
	}
	if err := inc.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.output.Write([]byte(fmt.Sprintf("jepsen: SIGKILL to replica %s: %v\n", p.cfg.Name, err)))
	}
	<-inc.exited
}

// Close kills the replica process if it runs.
func (p *Process) Close() { p.Kill() }

// tail keeps the last tailSize bytes written to it.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 256 << 10

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if over := len(t.buf) - tailSize; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
