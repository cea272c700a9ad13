// Command tocsin-racebench measures the race engine's synchronisation against naive baselines and
// prints a Markdown table (make bench-race).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/tocsin/tocsin/internal/race"
	"github.com/tocsin/tocsin/internal/race/racebench"
)

func main() {
	batches := flag.Int("batches", 50, "batches per method and size")
	sizes := flag.String("n", "2,10,20,100", "batch sizes, comma-separated")
	netem := flag.Bool("netem", true, "also measure over a veth pair with netem delay 10ms+-3ms (needs root)")
	timeout := flag.Duration("timeout", 15*time.Minute, "give up after this long")
	settle := flag.Duration("settle", race.DefaultSettle, "the engine's wait between priming and release")
	flag.Parse()
	cfg := racebench.Config{Batches: *batches, Netem: *netem, Settle: *settle, Out: os.Stderr}
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 1000 {
			fmt.Fprintf(os.Stderr, "error: -n: %q is not a size from 1 to 1000\n", s)
			os.Exit(2)
		}
		cfg.Sizes = append(cfg.Sizes, n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	rows, err := racebench.Run(ctx, cfg)
	racebench.WriteTable(os.Stdout, rows)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
}
