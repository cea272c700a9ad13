package cli

import (
	"fmt"

	"github.com/tocsin/tocsin/internal/check"
)

func runChecks(s *stdio, args []string) int {
	fs := newFlags(s, "checks", "tocsin checks", "Lists every check with its ID, CWE and what it proves.")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	for _, c := range check.All() {
		m := c.Meta()
		fmt.Fprintf(s.out, "%s  (%s)\n  %s\n  %s\n\n", m.ID, m.CWE, m.Title, m.Description)
	}
	return ExitOK
}
