// Command tocsin finds time-of-check/time-of-use flaws in HTTP APIs that use bearer tokens.
// See `tocsin help`.
package main

import (
	"os"

	"github.com/tocsin/tocsin/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
