package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tocsin/tocsin/internal/finding"
	"github.com/tocsin/tocsin/internal/report"
)

const reportLong = `Converts a saved JSON report (what ` + "`tocsin scan --format json`" + ` or ` + "`tocsin demo --format json`" + `
wrote: one report object or an array of them) to another format: text, json, sarif (SARIF 2.1.0 for
code scanning), junit (JUnit XML for CI test views) or html (one self-contained page). Nothing is
contacted; the summary, status, score and grade are recomputed from the checks and findings
(reports of format v1 and v2 are read; v1 reports convert with what they hold).

The input is read up to 4 MiB; a larger file is refused (a scan's report is tens of kilobytes).

Exit status: 2 when the input cannot be read, is larger than 4 MiB, or is not a tocsin report. With
--fail-on, the scan's rule (docs/ci.md): 1 when a finding is at or above it, else 2 when the report
records an incomplete scan or an inconclusive check, else 0. Without it, 0.`

const reportExample = `  tocsin report -i report.json --format html -o report.html
  tocsin report -i report.json --format sarif -o tocsin.sarif --fail-on high`

func newReportCmd(s *stdio) *cobra.Command {
	var in string
	var o outputFlags
	cmd := &cobra.Command{
		Use:     "report -i FILE [--format FORMAT] [-o FILE]",
		Short:   "Convert a saved JSON report to text, sarif, junit or html",
		Long:    reportLong,
		Example: reportExample,
		Args:    noArgs,
		RunE:    func(*cobra.Command, []string) error { return runReport(s, in, &o) },
	}
	cmd.Flags().StringVarP(&in, "input", "i", "", "the JSON report `file` to convert (- reads standard input); required")
	_ = cmd.MarkFlagFilename("input", "json")
	o.register(cmd, "none")
	return cmd
}

func runReport(s *stdio, in string, o *outputFlags) error {
	if in == "" {
		return failed(s, errors.New("no input report"), "pass the JSON report with -i report.json (write one with tocsin scan --format json -o report.json)")
	}
	if err := o.validate(); err != nil {
		return failed(s, err)
	}
	data, err := readReport(s.in, in)
	if err != nil {
		return failed(s, fmt.Errorf("read report: %w", err))
	}
	reports, err := decodeReports(in, data)
	if err != nil {
		return failed(s, err, "tocsin report reads the JSON that `tocsin scan --format json` writes (docs/report-json.md)")
	}
	if err := o.emit(s, reports...); err != nil {
		return failed(s, err)
	}
	if o.failOn == "none" {
		// Converting is all that was asked: the scan's own exit status said how it went.
		return nil
	}
	return exitCode(o.exitCode(reports...))
}

// maxReportBytes bounds what tocsin report reads. The demo's two scans make a 40 KB report, so this
// is room for a hundred, and a device or an endless stream given by mistake is refused at once
// instead of read until memory runs out. Deep nesting needs no bound of ours: encoding/json stops at
// 10,000 levels, in time and memory linear in the input.
const maxReportBytes = 4 << 20

// readReport reads the file named by -i ("-": r), at most maxReportBytes of it.
func readReport(r io.Reader, name string) ([]byte, error) {
	if name == "-" {
		name = "standard input"
	} else {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxReportBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxReportBytes {
		return nil, fmt.Errorf("%s is larger than 4 MiB (hint: tocsin report reads the JSON that tocsin scan --format json writes, tens of kilobytes; check that -i names it, not a device or a stream)", name)
	}
	return data, nil
}

// decodeReports reads one report object or an array of them and checks that each is a format this
// tocsin understands. Unknown fields are allowed: a version may add fields (docs/report-json.md).
func decodeReports(name string, data []byte) ([]*report.Report, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%s is empty", name)
	}
	var reports []*report.Report
	var err error
	switch trimmed[0] {
	case '{':
		var r report.Report
		err = json.Unmarshal(trimmed, &r)
		reports = []*report.Report{&r}
	case '[':
		err = json.Unmarshal(trimmed, &reports)
	default:
		return nil, fmt.Errorf("%s is not JSON (it starts with %q)", name, string(firstRunes(trimmed, 16)))
	}
	if err != nil {
		var syntax *json.SyntaxError
		if errors.As(err, &syntax) {
			return nil, fmt.Errorf("%s is not valid JSON at byte %d: %w", name, syntax.Offset, err)
		}
		return nil, fmt.Errorf("%s does not look like a tocsin report: %w", name, err)
	}
	if len(reports) == 0 {
		return nil, fmt.Errorf("%s holds an empty array: no report to convert", name)
	}
	for i, r := range reports {
		where := name
		if trimmed[0] == '[' {
			where = fmt.Sprintf("%s: report %d", name, i+1)
		}
		if r == nil {
			return nil, fmt.Errorf("%s is null", where)
		}
		if !slices.Contains(report.ReadableSchemas, r.Schema) {
			if r.Schema == "" {
				return nil, fmt.Errorf("%s has no \"schema\" field: not a tocsin report", where)
			}
			return nil, fmt.Errorf("%s has schema %q; this tocsin reads %s", where, r.Schema, strings.Join(report.ReadableSchemas, " and "))
		}
		if r.Findings == nil {
			r.Findings = []finding.Finding{}
		}
		r.Finish()
	}
	return reports, nil
}

func firstRunes(b []byte, n int) []rune {
	r := []rune(string(b))
	if len(r) > n {
		r = r[:n]
	}
	return r
}
