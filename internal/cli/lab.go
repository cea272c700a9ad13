package cli

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/tocsin/tocsin/internal/lab"
)

const labHelp = `Serves the lab for manual use until interrupted: an identity provider (OAuth2 token endpoint,
RFC 7662 introspection, RFC 7009 revocation, an admin call that changes a subject's scopes) and the
resource API in the chosen flavour, on one loopback origin. It prints how to get, revoke and downgrade
a token with curl, and can write a scan config for itself.

Examples:
  tocsin lab --flavor vulnerable --addr 127.0.0.1:8787
  tocsin lab --flavor fixed --write-config lab.yaml`

func runLab(s *stdio, args []string) int {
	fs := newFlags(s, "lab", "tocsin lab [--flavor vulnerable|fixed] [--addr 127.0.0.1:PORT] [flags]", labHelp)
	var flavor, addr, configOut string
	fs.StringVar(&flavor, "flavor", "vulnerable", "`vulnerable` (the seed's cached, stale patterns) or fixed (built on guard)")
	fs.StringVar(&addr, "addr", "127.0.0.1:8787", "loopback `address` to listen on")
	fs.StringVar(&configOut, "write-config", "", "write a scan config for this lab to `file` (secrets as ${...} references; the values are printed)")
	var lf labFlags
	lf.register(fs)
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if flavor != "vulnerable" && flavor != "fixed" {
		fail(s.err, fmt.Errorf("--flavor: unknown flavour %q", flavor), "use --flavor vulnerable or --flavor fixed")
		return ExitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := lf.options(flavor)
	if err := opts.Validate(); err != nil {
		fail(s.err, err)
		return ExitUsage
	}
	// Secrets from the environment, when set, so that a script can know them before the lab starts.
	opts.ClientSecret = os.Getenv("TOCSIN_LAB_CLIENT_SECRET")
	opts.AdminKey = os.Getenv("TOCSIN_LAB_ADMIN_KEY")
	l, err := lab.Start(ctx, addr, opts)
	if err != nil {
		fail(s.err, err, "pick another port with --addr 127.0.0.1:PORT, or :0 for any free one")
		return ExitUsage
	}
	defer l.Close()
	if configOut != "" {
		if err := writeFileAtomic(configOut, l.ConfigYAML()); err != nil {
			fail(s.err, err)
			return ExitUsage
		}
	}
	fmt.Fprintf(s.out, "%s\n", l.Usage())
	env := l.Env()
	if configOut != "" {
		fmt.Fprintf(s.out, "Scan config written to %s. Scan the lab with:\n", configOut)
	} else {
		fmt.Fprint(s.out, "Scan the lab: write its config with --write-config lab.yaml, then:\n")
		configOut = "lab.yaml"
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		fmt.Fprintf(s.out, "  export %s=%s\n", k, env[k])
	}
	fmt.Fprintf(s.out, "  tocsin scan -c %s\n", configOut)
	fmt.Fprintln(s.out, "\nPress Ctrl-C to stop.")
	<-ctx.Done()
	return ExitOK
}
