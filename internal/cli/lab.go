package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
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
a token with curl. It serves its own OpenAPI document at /openapi.json.

--write-config and --write-openapi write a scan config and the OpenAPI document for the lab at
--addr, then exit; with --serve it writes them and keeps serving (so --addr 127.0.0.1:0 works).

The vulnerable flavour caches token introspection (--ttl) and permissions (--permission-ttl),
decides on the claims at the start of a request and reuses them, and pauses between its check and
the action on deletes (--gap). The fixed flavour serves the same routes built on guard.`

func newLabCmd(s *stdio) *cobra.Command {
	var flavor, addr string
	var w labWrites
	var lf labFlags
	cmd := &cobra.Command{
		Use:   "lab [--flavor vulnerable|fixed] [--addr 127.0.0.1:PORT] [flags]",
		Short: "Serve the lab (an identity provider and an API) for manual use",
		Long:  labLong,
		Example: "  tocsin lab --flavor vulnerable --addr 127.0.0.1:8787\n" +
			"  tocsin lab --write-config lab.yaml --write-openapi lab-openapi.json   # write both, then exit\n" +
			"  tocsin lab --flavor fixed --addr 127.0.0.1:0 --write-config lab.yaml --serve",
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			return runLab(s, flavor, addr, w, &lf)
		},
	}
	cmd.Flags().StringVar(&flavor, "flavor", "vulnerable", "`vulnerable` (caches and a check-to-use gap: every check finds something) or fixed (built on guard)")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8787", "loopback `address` to listen on")
	cmd.Flags().StringVar(&w.config, "write-config", "", "write a scan config for the lab at --addr to `file` and exit (secrets as ${...} references; serving prints their values)")
	cmd.Flags().StringVar(&w.openapi, "write-openapi", "", "write the lab's OpenAPI document (what it serves at /openapi.json) to `file` and exit")
	cmd.Flags().BoolVar(&w.serve, "serve", false, "with --write-config or --write-openapi: serve the lab after writing, instead of exiting (needed with port 0)")
	_ = cmd.RegisterFlagCompletionFunc("flavor", completeValues("vulnerable", "fixed"))
	_ = cmd.MarkFlagFilename("write-config", "yaml", "yml")
	_ = cmd.MarkFlagFilename("write-openapi", "json")
	lf.register(cmd)
	return cmd
}

// labWrites are the files `tocsin lab` writes, and whether it serves afterwards.
type labWrites struct {
	config, openapi string
	serve           bool
}

// write writes the requested files for the lab at url.
func (w labWrites) write(url, flavor string) error {
	for _, f := range []struct {
		path string
		data []byte
	}{{w.openapi, lab.OpenAPIFor(url, flavor)}, {w.config, lab.ConfigFor(url, flavor)}} { // the config last: a script waits for it
		if f.path == "" {
			continue
		}
		if err := writeFileAtomic(f.path, f.data); err != nil {
			return err
		}
	}
	return nil
}

func runLab(s *stdio, flavor, addr string, w labWrites, lf *labFlags) error {
	if flavor != "vulnerable" && flavor != "fixed" {
		return failed(s, fmt.Errorf("--flavor: unknown flavour %q", flavor), "use --flavor vulnerable or --flavor fixed")
	}
	writes := w.config != "" || w.openapi != ""
	if w.serve && !writes {
		return failed(s, errors.New("--serve goes with --write-config or --write-openapi"), "without them, tocsin lab serves anyway")
	}
	if writes && !w.serve {
		// Write for the address given and exit: the files stay valid for a lab served there later.
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" {
			return failed(s, fmt.Errorf("--addr %s: a file for the lab needs its port, and port 0 is chosen only when the lab listens", addr),
				"give a port (the default is 127.0.0.1:8787), or add --serve to write the files and keep serving")
		}
		if err := w.write("http://"+addr, flavor); err != nil {
			return failed(s, err)
		}
		for _, f := range []string{w.config, w.openapi} {
			if f != "" {
				fmt.Fprintf(s.out, "wrote %s for the %s lab at http://%s\n", f, flavor, addr)
			}
		}
		fmt.Fprintf(s.out, "Serve it with: tocsin lab --flavor %s --addr %s (it prints the secrets to export)\n", flavor, addr)
		return nil
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := lf.options(flavor)
	if err := opts.Validate(); err != nil {
		return failed(s, err)
	}
	// Secrets from the environment, when set, so that a script can know them before the lab starts.
	opts.ClientSecret = os.Getenv("TOCSIN_LAB_CLIENT_SECRET")
	opts.AdminKey = os.Getenv("TOCSIN_LAB_ADMIN_KEY")
	l, err := lab.Start(ctx, addr, opts)
	if err != nil {
		return failed(s, err, "pick another port with --addr 127.0.0.1:PORT, or :0 for any free one")
	}
	defer l.Close()
	if err := w.write(l.URL(), flavor); err != nil {
		return failed(s, err)
	}
	fmt.Fprintf(s.out, "%s\n", l.Usage())
	env := l.Env()
	configOut := w.config
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
	fmt.Fprintf(s.out, "Its OpenAPI document: %s/openapi.json (tocsin init --openapi writes a config from it)\n", l.URL())
	fmt.Fprintln(s.out, "\nPress Ctrl-C to stop.")
	<-ctx.Done()
	return nil
}
