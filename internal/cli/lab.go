package cli

import (
	"context"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/tocsin/tocsin/internal/lab"
)

const labLong = `Serves the lab for manual use until interrupted: an identity provider (OAuth2 token endpoint,
RFC 7662 introspection, RFC 7009 revocation, an admin call that changes a subject's scopes) and the
resource API in the chosen flavour, on one loopback origin. It prints how to get, revoke and downgrade
a token with curl, and can write a scan config for itself.

The vulnerable flavour caches token introspection (--ttl) and permissions (--permission-ttl),
decides on the claims at the start of a request and reuses them, and pauses between its check and
the action on deletes (--gap). The fixed flavour serves the same routes built on guard.`

func newLabCmd(s *stdio) *cobra.Command {
	var flavor, addr, configOut string
	var lf labFlags
	cmd := &cobra.Command{
		Use:     "lab [--flavor vulnerable|fixed] [--addr 127.0.0.1:PORT] [flags]",
		Short:   "Serve the lab (an identity provider and an API) for manual use",
		Long:    labLong,
		Example: "  tocsin lab --flavor vulnerable --addr 127.0.0.1:8787\n  tocsin lab --flavor fixed --write-config lab.yaml",
		Args:    noArgs,
		RunE: func(*cobra.Command, []string) error {
			return runLab(s, flavor, addr, configOut, &lf)
		},
	}
	cmd.Flags().StringVar(&flavor, "flavor", "vulnerable", "`vulnerable` (caches and a check-to-use gap: every check finds something) or fixed (built on guard)")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8787", "loopback `address` to listen on")
	cmd.Flags().StringVar(&configOut, "write-config", "", "write a scan config for this lab to `file` (secrets as ${...} references; the values are printed)")
	_ = cmd.RegisterFlagCompletionFunc("flavor", completeValues("vulnerable", "fixed"))
	_ = cmd.MarkFlagFilename("write-config", "yaml", "yml")
	lf.register(cmd)
	return cmd
}

func runLab(s *stdio, flavor, addr, configOut string, lf *labFlags) error {
	if flavor != "vulnerable" && flavor != "fixed" {
		return failed(s, fmt.Errorf("--flavor: unknown flavour %q", flavor), "use --flavor vulnerable or --flavor fixed")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := lf.options(flavor)
	// Secrets from the environment, when set, so that a script can know them before the lab starts.
	opts.ClientSecret = os.Getenv("TOCSIN_LAB_CLIENT_SECRET")
	opts.AdminKey = os.Getenv("TOCSIN_LAB_ADMIN_KEY")
	l, err := lab.Start(ctx, addr, opts)
	if err != nil {
		return failed(s, err, "pick another port with --addr 127.0.0.1:PORT, or :0 for any free one")
	}
	defer l.Close()
	if configOut != "" {
		if err := writeFileAtomic(configOut, l.ConfigYAML()); err != nil {
			return failed(s, err)
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
	return nil
}
