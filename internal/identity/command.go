package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/tocsin/tocsin/internal/redact"
)

const (
	// commandTimeout bounds a token command or hook: a script stuck on a prompt must not hang the scan.
	commandTimeout = 30 * time.Second
	// maxCommandOutput is how much of a command's stdout and stderr is kept; a token is far shorter.
	maxCommandOutput = 64 << 10
	// excerptBytes is how much of a command's stderr or a server's body goes into an error message.
	excerptBytes = 200
)

// commandOutput is what a finished command left behind.
type commandOutput struct {
	stdout, stderr []byte
}

// runCommand runs argv directly (no shell, so no quoting surprises) in dir ("" for the working
// directory) with extraEnv added to tocsin's environment. It returns the output even when the command
// fails, for the error message.
func runCommand(ctx context.Context, dir string, argv, extraEnv []string, timeout time.Duration) (commandOutput, error) {
	if len(argv) == 0 || argv[0] == "" {
		return commandOutput{}, errors.New("empty command")
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	if len(extraEnv) > 0 {
		cmd.Env = append(cmd.Environ(), extraEnv...)
	}
	stdout := &cappedBuffer{max: maxCommandOutput}
	stderr := &cappedBuffer{max: maxCommandOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	// A child that outlives the killed command keeps the pipes open; do not wait on it for long.
	cmd.WaitDelay = time.Second
	err := cmd.Run()
	out := commandOutput{stdout: stdout.Bytes(), stderr: stderr.Bytes()}
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = fmt.Errorf("killed after %s: %w", timeout, ctx.Err())
	}
	return out, err
}

// commandName is how a command appears in messages: the program's base name. The arguments are left
// out; they may hold a token.
func commandName(argv []string) string {
	if len(argv) == 0 {
		return "(none)"
	}
	return filepath.Base(argv[0])
}

// cappedBuffer keeps the first max bytes written to it and discards the rest, while reporting every
// write as complete so that the command is not killed by a broken pipe.
type cappedBuffer struct {
	bytes.Buffer
	max int
}

func (b *cappedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// excerpt is the start of b, redacted, for an error message (see redact.Excerpt: redaction runs
// before the cut, so a secret straddling the cut cannot survive as an unrecognised fragment).
func excerpt(r *redact.Redactor, b []byte) string {
	if s := r.Excerpt(b, excerptBytes, false); s != "" {
		return s
	}
	return "(empty)"
}

// commandSource runs a command and takes its trimmed stdout as the token.
type commandSource struct {
	argv    []string
	dir     string // where it runs; "" is tocsin's working directory
	r       *redact.Redactor
	timeout time.Duration
}

var _ Source = (*commandSource)(nil)

// NewCommand returns a source that runs argv (no shell) for every token; its stdout, trimmed, is the
// token.
func NewCommand(argv []string, r *redact.Redactor) Source {
	return NewCommandIn("", argv, r)
}

// NewCommandIn is NewCommand running in dir (a config file's folder), so that relative files among
// its arguments are found there, wherever tocsin was started.
func NewCommandIn(dir string, argv []string, r *redact.Redactor) Source {
	return &commandSource{argv: append([]string(nil), argv...), dir: dir, r: orNew(r), timeout: commandTimeout}
}

// Token runs the command. Its stdout is the token, or a JSON object holding it under "token" (or
// "access_token"), with an optional "expires_in" in seconds and any other scalar fields, which
// become the token's Fields ({{token.id}}): real APIs revoke a token by its id.
func (s *commandSource) Token(ctx context.Context) (Token, error) {
	out, err := runCommand(ctx, s.dir, s.argv, nil, s.timeout)
	stdout := strings.TrimSpace(string(out.stdout))
	// Registered even when the command failed: stdout may still hold a token, and it must not
	// surface in the stderr excerpt below.
	s.r.Add("token", stdout)
	name := commandName(s.argv)
	if err != nil {
		return Token{}, s.r.Error(fmt.Errorf("token command %s: %w; stderr: %s", name, err, excerpt(s.r, out.stderr)))
	}
	if strings.HasPrefix(stdout, "{") {
		tok, err := tokenFromJSON([]byte(stdout), s.r)
		if err != nil {
			return Token{}, s.r.Error(fmt.Errorf("token command %s: %w", name, err))
		}
		return tok, nil
	}
	if stdout == "" {
		return Token{}, s.r.Error(fmt.Errorf("token command %s printed no token; stderr: %s (hint: the command must print the token, or a JSON object with a \"token\" field, on stdout)", name, excerpt(s.r, out.stderr)))
	}
	if strings.ContainsAny(stdout, " \t\r\n") {
		return Token{}, s.r.Error(fmt.Errorf("token command %s printed more than a token (hint: print only the token, or a JSON object with a \"token\" field, on stdout, and messages on stderr)", name))
	}
	return Token{Value: stdout}, nil
}

// tokenFromJSON reads a token source's JSON object: "token" or "access_token" (required), an
// optional "expires_in" (seconds), and other scalar fields as Fields. Every value is registered with
// r: a token's id is as good as the token to whoever can revoke by id.
func tokenFromJSON(data []byte, r *redact.Redactor) (Token, error) {
	var obj map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return Token{}, fmt.Errorf("its output looks like JSON but does not parse: %v (hint: print one JSON object, or only the token)", err)
	}
	tok := Token{Fields: map[string]string{}}
	for _, k := range []string{"token", "access_token"} { // first, so that its label says token
		if v, ok := obj[k].(string); ok {
			r.Add("token", v)
		}
	}
	for k, v := range obj {
		var text string
		switch x := v.(type) {
		case string:
			text = x
		case json.Number:
			text = x.String()
		case bool:
			text = fmt.Sprint(x)
		default:
			continue // objects, arrays, null: not usable in a template
		}
		if !redact.Descriptive(k) {
			r.Add("token-field", text)
		}
		switch k {
		case "token", "access_token":
			if tok.Value == "" || k == "token" {
				tok.Value = text
			}
		case "expires_in":
			if secs, err := strconv.ParseFloat(text, 64); err == nil && secs > 0 {
				tok.Expiry = time.Now().Add(time.Duration(secs * float64(time.Second)))
			}
		default:
			tok.Fields[k] = text
		}
	}
	if tok.Value == "" {
		return Token{}, errors.New(`its JSON output has no "token" field (hint: print {"token": "...", "id": "..."})`)
	}
	r.Add("token", tok.Value)
	return tok, nil
}

func (s *commandSource) Fresh() bool  { return true }
func (s *commandSource) Kind() string { return "command" }

// staticSource returns the token from the config.
type staticSource struct {
	token string
	r     *redact.Redactor
}

var _ Source = (*staticSource)(nil)

// NewStatic returns a source that always yields token.
func NewStatic(token string, r *redact.Redactor) Source {
	r = orNew(r)
	r.Add("token", token)
	return &staticSource{token: token, r: r}
}

func (s *staticSource) Token(context.Context) (Token, error) {
	if s.token == "" {
		return Token{}, errors.New("static token is empty (hint: check the variable it is read from)")
	}
	s.r.Add("token", s.token)
	return Token{Value: s.token}, nil
}

func (s *staticSource) Fresh() bool  { return false }
func (s *staticSource) Kind() string { return "static" }

// orNew lets a nil redactor stand for one that knows no secrets yet, so that Add never panics.
func orNew(r *redact.Redactor) *redact.Redactor {
	if r == nil {
		return &redact.Redactor{}
	}
	return r
}
