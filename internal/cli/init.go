package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tocsin/tocsin/internal/check"
	"github.com/tocsin/tocsin/internal/client"
	"github.com/tocsin/tocsin/internal/config"
	"github.com/tocsin/tocsin/internal/redact"
	"github.com/tocsin/tocsin/internal/surface"
	"github.com/tocsin/tocsin/internal/target"
)

const initLong = `Writes a starter config for the API an OpenAPI document describes (OpenAPI 3.0, 3.1 or Swagger
2.0; a file, or a URL that is fetched once): its origin, the document, identities made from its
security schemes, each naming its scheme and the main scheme's first (an OAuth2 password or
client-credentials flow gives the token URL and scopes; a bearer or OpenID Connect scheme the
document's JSON login on its path prefix, else a static token, as does an apiKey scheme), the
revocation endpoint and the call that changes a subject's scopes when the document describes them
(an RFC 7009 form with a token field; a body with a scopes list), the writes the checks need under
destructive, and, as comments, which operations each check would run on and why. Secrets are
${VARIABLES} to set in the environment: the file passes ` + "`tocsin validate`" + ` as written once they
are set.

Nothing is sent to the API but the document's own URL, when one is given.`

func newInitCmd(s *stdio) *cobra.Command {
	var spec, origin, out string
	var force bool
	cmd := &cobra.Command{
		Use:   "init --openapi FILE|URL [--origin URL] [-o FILE]",
		Short: "Write a starter config from an OpenAPI document",
		Long:  initLong,
		Example: "  tocsin init --openapi openapi.yaml\n" +
			"  tocsin init --openapi http://127.0.0.1:8787/openapi.json -o lab.yaml\n" +
			"  tocsin init --openapi spec.json --origin https://staging.example.com -o -",
		Args: noArgs,
		RunE: func(*cobra.Command, []string) error {
			if spec == "" {
				return failed(s, errors.New("--openapi is required"), "give the API's OpenAPI document: a file, or its URL")
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runInit(ctx, s, spec, origin, out, force)
		},
	}
	cmd.Flags().StringVar(&spec, "openapi", "", "the API's OpenAPI document: a `file` or an http(s) URL")
	cmd.Flags().StringVar(&origin, "origin", "", "the API's origin `URL` (scheme://host[:port]); default: the document's first server")
	cmd.Flags().StringVarP(&out, "output", "o", defaultConfig, "the config `file` to write, or - for standard output")
	cmd.Flags().BoolVar(&force, "force", false, "overwrite the output file if it exists")
	_ = cmd.MarkFlagFilename("openapi", "yaml", "yml", "json")
	_ = cmd.MarkFlagFilename("output", "yaml", "yml")
	return cmd
}

func runInit(ctx context.Context, s *stdio, spec, origin, out string, force bool) error {
	if out != "-" && !force {
		if _, err := os.Stat(out); err == nil {
			return failed(s, fmt.Errorf("%s exists", out), "choose another file with -o, or add --force to overwrite it")
		}
	}
	data, specOrigin, err := readSpec(ctx, spec)
	if err != nil {
		return failed(s, err)
	}
	doc, err := surface.ParseOpenAPI(data)
	if err != nil {
		return failed(s, fmt.Errorf("%s: %w", redact.URL(spec), err), "give an OpenAPI 3.0 or 3.1 document, or a Swagger 2.0 one, as JSON or YAML")
	}
	if origin == "" {
		for _, srv := range doc.Servers {
			if o, ok := originOf(srv); ok {
				origin = o
				break
			}
		}
	}
	if origin == "" {
		origin = specOrigin
	}
	o, ok := originOf(origin)
	if !ok {
		return failed(s, fmt.Errorf("no origin: %q is not scheme://host[:port], and the document names no absolute server", origin), "give the API's origin with --origin https://api.example.com")
	}
	source := spec
	if specOrigin == "" && out != "-" {
		// The config names the document relative to its own folder.
		if abs, err := filepath.Abs(spec); err == nil {
			if dir, err := filepath.Abs(filepath.Dir(out)); err == nil {
				if rel, err := filepath.Rel(dir, abs); err == nil {
					source = filepath.ToSlash(rel)
				}
			}
		}
	}
	st := starter{doc: doc, origin: o, source: source, specOrigin: specOrigin}
	text := st.yaml()
	plan, err := initPlan(ctx, text, out, spec)
	if err != nil {
		return failed(s, fmt.Errorf("the config tocsin init wrote does not validate (a bug in tocsin init): %w", err))
	}
	text += plan
	if out == "-" {
		_, err := fmt.Fprint(s.out, text)
		return err
	}
	if err := writeFileAtomic(out, []byte(text)); err != nil {
		return failed(s, err)
	}
	fmt.Fprintf(s.out, "wrote %s for %s (%d operations). Set the variables it names, then:\n  tocsin validate -c %s\n  tocsin scan -c %s\n", out, o, len(doc.Operations), out, out)
	if vars := st.vars(); len(vars) > 0 {
		fmt.Fprintf(s.out, "Variables: %s\n", strings.Join(vars, " "))
	}
	return nil
}

// readSpec reads the document from a file or, through a client allowed only the URL's origin, from
// its URL. specOrigin is the URL's origin ("" for a file).
func readSpec(ctx context.Context, spec string) (data []byte, specOrigin string, err error) {
	if !config.IsURL(spec) {
		data, err = config.ReadFile(spec, "an OpenAPI document")
		return data, "", err
	}
	o, ok := originOf(spec)
	if !ok {
		return nil, "", fmt.Errorf("--openapi %s: not an http(s) URL", redact.URL(spec))
	}
	c, err := client.New(client.Options{Origins: []string{o}, Budget: 5, Timeout: 30 * time.Second, MaxResponseBytes: surface.MaxBytes})
	if err != nil {
		return nil, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, spec, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := c.Do(ctx, req)
	switch {
	case err != nil:
		return nil, "", fmt.Errorf("fetch %s: %w", redact.URL(spec), err)
	case resp.Status != http.StatusOK:
		return nil, "", fmt.Errorf("fetch %s: %s", redact.URL(spec), resp.StatusText())
	case resp.Truncated:
		return nil, "", fmt.Errorf("%s is larger than %d MiB", redact.URL(spec), surface.MaxBytes>>20)
	}
	return resp.Body, o, nil
}

// originOf returns scheme://host[:port] of an absolute http(s) URL.
func originOf(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false
	}
	return u.Scheme + "://" + strings.ToLower(u.Host), true
}

// initPlan validates the written config and says, as comments, what each check would run on: the
// same choice tocsin scan makes (check.Choose), made on the document without sending anything.
func initPlan(ctx context.Context, text, out, spec string) (string, error) {
	cfg, err := config.Parse(out, []byte(text), func(name string) (string, bool) { return "placeholder-" + strings.ToLower(name), true })
	if err != nil {
		return "", err
	}
	cfg.OpenAPI.Source = spec // as given on the command line, from here
	t, err := target.Build(ctx, cfg, &redact.Redactor{})
	if err != nil {
		return "", err
	}
	chooseErr := check.Choose(t)
	var b strings.Builder
	b.WriteString("\n# What each check would run on, and why (tocsin scan chooses the same; its report's surface\n# section says it again, with what was not tested and why):\n")
	for _, id := range t.CheckOrder {
		plan := t.Checks[id]
		if plan.PerProbe != nil {
			// Each operation runs as an identity of its own scheme: the operation says which.
			fmt.Fprintf(&b, "#   %s, each operation as an identity its security scheme takes:\n", id)
		} else {
			fmt.Fprintf(&b, "#   %s, as %s", id, plan.Identity)
			if plan.Verifier != "" {
				fmt.Fprintf(&b, " (read back as %s)", plan.Verifier)
			}
			b.WriteString(":\n")
		}
		for _, op := range t.Surface.Ops {
			for _, u := range op.Uses {
				if u.Check != id {
					continue
				}
				pp, ok := plan.PerProbe[op.Probe]
				if !ok {
					fmt.Fprintf(&b, "#     %s (%s): %s\n", op.Endpoint(), op.ID, strings.TrimPrefix(u.Why, "as "+plan.Identity+": "))
					continue
				}
				why := strings.TrimPrefix(u.Why, "as "+pp.Identity+": ")
				who := pp.Identity
				if pp.Verifier != "" {
					why = strings.TrimSuffix(why, fmt.Sprintf(" (%s, with the same scheme, is the other subject)", pp.Verifier))
					who += fmt.Sprintf(" (%s the other subject)", pp.Verifier)
				}
				fmt.Fprintf(&b, "#     %s (%s), as %s: %s\n", op.Endpoint(), op.ID, who, why)
			}
		}
	}
	for _, id := range check.IDs() {
		if why := t.Surface.Unselected[id]; why != "" {
			fmt.Fprintf(&b, "#   %s: not run: %s\n", id, why)
		}
	}
	if chooseErr != nil {
		fmt.Fprintf(&b, "# As written, no check can run: %v\n", chooseErr)
	}
	return b.String(), nil
}
