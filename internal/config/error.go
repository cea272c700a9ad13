package config

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
)

// Problem is one thing wrong with a config file, located precisely enough to fix it.
type Problem struct {
	File  string // the name given to Parse, or the path given to Load
	Line  int    // 1-based; 0 when unknown (a config built in code)
	Field string // dotted path such as identities.alice.revoke or target.origins[0]
	Msg   string // what is wrong
	Hint  string // what to do about it; may be empty
}

// String formats the problem as "file:line: field: msg (hint: hint)", leaving out what is unknown.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			b.WriteString(":" + strconv.Itoa(p.Line))
		}
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Msg)
	if p.Hint != "" {
		b.WriteString(" (hint: " + p.Hint + ")")
	}
	return b.String()
}

// Error is every problem found in a config. Parse, Load and Validate return it as their error.
type Error struct {
	Problems []Problem
}

// Error prints one problem per line, in file order.
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// problems collects Problems for one file.
type problems struct {
	file string
	list []Problem
}

func (ps *problems) add(line int, field, msg, hint string) {
	ps.list = append(ps.list, Problem{File: ps.file, Line: line, Field: field, Msg: msg, Hint: hint})
}

// err returns nil when there are no problems, else an *Error with the problems sorted by line.
// Problems without a line keep their order after those with one.
func (ps *problems) err() error {
	if len(ps.list) == 0 {
		return nil
	}
	list := slices.Clone(ps.list)
	slices.SortStableFunc(list, func(a, b Problem) int {
		switch {
		case a.Line == 0 && b.Line == 0:
			return 0
		case a.Line == 0:
			return 1
		case b.Line == 0:
			return -1
		}
		return cmp.Compare(a.Line, b.Line)
	})
	return &Error{Problems: list}
}
