package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tocsin/tocsin/internal/check"
)

// checkInfo is one check in `tocsin checks --format json`.
type checkInfo struct {
	ID          string   `json:"id"`
	Title       string   `json:"title"`
	CWE         string   `json:"cwe"`
	Description string   `json:"description"`
	Remediation string   `json:"remediation"`
	References  []string `json:"references"`
}

func newChecksCmd(s *stdio) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "checks [--format text|json]",
		Short: "List the checks tocsin runs",
		Long:  "Lists every check with its ID (what a config names under checks), CWE and what it proves; --format json adds the remediation and references.",
		Args:  noArgs,
		RunE: func(*cobra.Command, []string) error {
			switch format {
			case "text":
				for _, c := range check.All() {
					m := c.Meta()
					fmt.Fprintf(s.out, "%s  (%s)\n  %s\n  %s\n\n", m.ID, m.CWE, m.Title, m.Description)
				}
				return nil
			case "json":
				list := []checkInfo{}
				for _, c := range check.All() {
					m := c.Meta()
					list = append(list, checkInfo{ID: m.ID, Title: m.Title, CWE: m.CWE, Description: m.Description, Remediation: m.Remediation, References: append([]string{}, m.References...)})
				}
				enc := json.NewEncoder(s.out)
				enc.SetIndent("", "  ")
				enc.SetEscapeHTML(false)
				return enc.Encode(list)
			}
			return failed(s, fmt.Errorf("--format: unknown format %q (want text or json)", format))
		},
	}
	cmd.Flags().StringVarP(&format, "format", "f", "text", "`text` or json")
	_ = cmd.RegisterFlagCompletionFunc("format", completeValues("text", "json"))
	return cmd
}
