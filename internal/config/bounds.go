package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// The YAML library this package uses (goccy/go-yaml) needs memory and time out of all proportion to
// some inputs: a parse allocates for each level of nesting a path as long as the nesting so far
// (400 KB of "[" grew past 6 GB), a block mapping costs the square of its keys (100,000 keys: 40 s)
// and recurses once per key (3 million keys overflowed the stack), and every node costs kilobytes
// (4 MiB of a flow list: 4 GB). So a file is measured first, by a single pass over its bytes, and
// refused unless all of these hold. Each bound is far above what a scan config needs (the commented
// example is 7 KB, nests 6 levels and has about 400 elements).
const (
	// MaxFileBytes is the largest config file read.
	MaxFileBytes = 4 << 20
	// MaxDepth is how deeply mappings, lists and flow collections may nest.
	MaxDepth = 64
	// MaxElements bounds the file's keys, list items and flow collections, counted wherever ": ",
	// "- ", "? ", ",", "[" or "{" appears (in strings and comments too, which only over-counts).
	MaxElements = 10_000
	// maxFlowCollections bounds the "[" and "{" that are not {{name}} placeholders. Nesting is counted
	// without regard to quotes, so a "]" inside a string could hide a level; this bound holds whatever
	// the quoting, and keeps the worst such nesting to a cost the parser bears easily (tens of MB).
	maxFlowCollections = 1024
)

// readFile reads a config file through a reader that stops after MaxFileBytes: a device such as
// /dev/zero, or an endless pipe, is refused as soon as that much has come, not read until memory runs
// out. A pipe that ends (tocsin scan -c <(generate-config)) is read like a file.
func readFile(path string) ([]byte, error) {
	return ReadFile(path, "a scan config is a few kilobytes of YAML")
}

// ReadFile reads a file the config names (an OpenAPI document, a HAR file) the way the config itself
// is read: at most MaxFileBytes, so that a device or an endless stream is refused at once. what
// says what the file should be, for the hint.
func ReadFile(path, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%s is larger than %s (hint: %s; check that the path names it, not a device or a stream)", path, sizeText(MaxFileBytes), what)
	}
	return data, nil
}

// sizeText prints a byte count in the largest whole binary unit.
func sizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// errShape is a file refused by checkShape; line is where the bound was crossed (0: the whole file).
type errShape struct {
	line      int
	msg, hint string
}

func (e *errShape) Error() string { return e.msg }

// checkShape measures data against MaxFileBytes, MaxDepth, MaxElements and maxFlowCollections in one
// pass, without allocating per byte, and reports the first bound crossed.
func checkShape(data []byte) error {
	if len(data) > MaxFileBytes {
		return &errShape{msg: fmt.Sprintf("the file is larger than %s", sizeText(MaxFileBytes)), hint: "a scan config is a few kilobytes of YAML"}
	}
	if i := bytes.IndexByte(data, 0); i >= 0 {
		return &errShape{msg: fmt.Sprintf("the file is not text (a NUL byte at offset %d)", i), hint: "a scan config is YAML text; check that the path names it"}
	}
	_, err := measureShape(data, shapeLimits{depth: MaxDepth, elements: MaxElements, flows: maxFlowCollections})
	return err
}

type shapeLimits struct{ depth, elements, flows int }

// shape is what measureShape found: the deepest block nesting estimated for a line, and the flow
// collections. The parser's real nesting is at most 2*maxBlock + flows + 2 (a {{name}} placeholder,
// not counted, is two levels that close at once); FuzzShapeBound holds the parser to that.
type shape struct{ maxBlock, flows int }

// measureShape estimates data's nesting and counts its elements, and stops at the first of lim
// crossed.
//
// Flow nesting is "[" and "{" minus "]" and "}" outside comments. Block nesting, for a line, is the
// number of distinct indentations of earlier lines that are smaller than its own, plus one per "- "
// or "? " that opens it: a node's ancestors all start on earlier lines (or at those markers), each at
// a smaller indentation. This is exact for a file indented the usual way, and never less than half
// the real block nesting (a list may sit at its parent key's column), whatever the indentation.
func measureShape(data []byte, lim shapeLimits) (shape, error) {
	var (
		sh         shape
		line       = 1
		columns    []int // indentations seen, sorted
		blockDepth int   // of the current line
		flowDepth  int
		elements   int
		inComment  bool // from a "#" to the end of its line
	)
	deep := func() error {
		return &errShape{line: line, msg: fmt.Sprintf("nests deeper than %d levels", lim.depth),
			hint: "a scan config nests a few levels; flatten this structure"}
	}
	count := func() error {
		elements++
		if elements > lim.elements {
			return &errShape{line: line, msg: fmt.Sprintf("more than %d keys, list items and flow collections", lim.elements),
				hint: "a scan config has a few hundred; split the scan into several configs"}
		}
		return nil
	}
	// see records a column where a block node starts and returns how many smaller ones were seen.
	see := func(col int) int {
		i, found := slices.BinarySearch(columns, col)
		if !found {
			columns = slices.Insert(columns, i, col)
		}
		return i
	}
	lineStart := true
	for i := 0; i < len(data); i++ {
		if lineStart {
			lineStart = false
			// A line's indentation and its leading "- " and "? " markers give its block nesting.
			start := i
			for i < len(data) && (data[i] == ' ' || data[i] == '\t') {
				i++
			}
			if i == len(data) {
				break
			}
			if c := data[i]; c == '\n' || c == '\r' || c == '#' {
				// Blank or comment-only: no node starts here.
				inComment = c == '#'
			} else {
				blockDepth = see(i-start) + 1
				for i < len(data) && (data[i] == '-' || data[i] == '?') && isBlank(data, i+1) {
					if err := count(); err != nil {
						return sh, err
					}
					for i++; i < len(data) && (data[i] == ' ' || data[i] == '\t'); i++ {
					}
					blockDepth++
					see(i - start)
				}
				sh.maxBlock = max(sh.maxBlock, blockDepth)
				if blockDepth+flowDepth > lim.depth {
					return sh, deep()
				}
			}
			if i == len(data) {
				break
			}
		}
		switch data[i] {
		case '\n':
			line++
			inComment = false
			lineStart = true
		case '#':
			if i > 0 && (data[i-1] == ' ' || data[i-1] == '\t') {
				inComment = true
			}
		case '[', '{':
			if n := placeholderLen(data[i:]); n > 0 {
				i += n - 1
				continue
			}
			if err := count(); err != nil {
				return sh, err
			}
			sh.flows++
			if sh.flows > lim.flows {
				return sh, &errShape{line: line, msg: fmt.Sprintf("more than %d flow collections ([...] or {...})", lim.flows),
					hint: "write long lists and mappings in block style, one item per line"}
			}
			if !inComment {
				flowDepth++
				if blockDepth+flowDepth > lim.depth {
					return sh, deep()
				}
			}
		case ']', '}':
			if !inComment && flowDepth > 0 {
				flowDepth--
			}
		case ',':
			if err := count(); err != nil {
				return sh, err
			}
		case '-', '?', ':':
			if isBlank(data, i+1) {
				if err := count(); err != nil {
					return sh, err
				}
			}
		}
	}
	return sh, nil
}

// isBlank reports whether data[i] is a space, a tab, a line end or past the end: what must follow
// an indicator such as ": " or "- " for it to be one.
func isBlank(data []byte, i int) bool {
	return i >= len(data) || data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'
}

// placeholderLen is the length of a {{name}} template placeholder at the start of b, or 0. Such a
// placeholder opens and closes its own braces, so it cannot hide nesting, and configs hold many.
func placeholderLen(b []byte) int {
	if len(b) < 4 || b[0] != '{' || b[1] != '{' {
		return 0
	}
	for i := 2; i+1 < len(b); i++ {
		switch c := b[i]; {
		case c == '}':
			if b[i+1] == '}' {
				return i + 2
			}
			return 0
		case c == ' ' || c == '_' || c == '-' || c == '.' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		default:
			return 0
		}
	}
	return 0
}

// asShapeError turns a checkShape error into the problems Parse reports.
func asShapeError(name string, err error) error {
	var se *errShape
	if !errors.As(err, &se) {
		return err
	}
	return &Error{Problems: []Problem{{File: name, Line: se.line, Msg: se.msg, Hint: se.hint}}}
}
