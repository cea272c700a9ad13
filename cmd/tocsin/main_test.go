package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/tocsin/tocsin/internal/check"
	"github.com/tocsin/tocsin/internal/cli"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"tocsin": func() {
			// TOCSIN_TEST_RESTORE_FOR, read by this test binary only (never by the tocsin binary),
			// shortens how long a failing restore is retried (60 s in the tool), so that a script can
			// scan with a broken restore hook in seconds.
			if v := os.Getenv("TOCSIN_TEST_RESTORE_FOR"); v != "" {
				d, err := time.ParseDuration(v)
				if err != nil {
					fmt.Fprintf(os.Stderr, "TOCSIN_TEST_RESTORE_FOR: %v\n", err)
					os.Exit(100)
				}
				check.SetRestoreFor(d)
			}
			os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
		},
	})
}

// TestScripts runs the command-line scripts in testdata/script: the built binary's help, config
// errors, scans of the lab in both flavours, the demo, and the exit codes CI relies on.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"status":   cmdStatus,
			"waitfile": cmdWaitFile,
			"replace":  cmdReplace,
		},
	})
}

// status N cmd args... runs cmd and fails unless it exits with status N.
func cmdStatus(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: status N command [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("status: %v", err)
	}
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("status: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// waitfile FILE waits up to 20 s for FILE to exist (a background server writing its config).
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 1 {
		ts.Fatalf("usage: waitfile FILE")
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s did not appear within 20 s", args[0])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// replace FILE REGEXP REPLACEMENT rewrites FILE with every match of REGEXP (Go syntax) replaced by
// REPLACEMENT ($1 for a group): a config the lab wrote, broken on purpose. It fails when nothing
// matches, so a change in the lab's config cannot silently leave the script testing nothing.
func cmdReplace(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: replace FILE REGEXP REPLACEMENT")
	}
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	path := ts.MkAbs(args[0])
	data, err := os.ReadFile(path)
	ts.Check(err)
	if !re.Match(data) {
		ts.Fatalf("replace: %q matches nothing in %s", args[1], args[0])
	}
	ts.Check(os.WriteFile(path, re.ReplaceAll(data, []byte(args[2])), 0o644))
}
