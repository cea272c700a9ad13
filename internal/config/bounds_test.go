package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// hostileConfigs are inputs that once took the YAML parser to gigabytes, a stack overflow or tens of
// seconds (issue 12), each with what the refusal must say. cmd/tocsin runs them through the binary
// under a memory ceiling; here they are fuzz seeds and a table.
func hostileConfigs() []struct {
	name string
	data []byte
	want string
} {
	keys := func(n int) []byte {
		var b bytes.Buffer
		for i := range n {
			fmt.Fprintf(&b, "k%07d: v\n", i)
		}
		return b.Bytes()
	}
	indented := func(n int) []byte {
		var b bytes.Buffer
		for i := range n {
			b.WriteString(strings.Repeat(" ", i) + "a:\n")
		}
		return b.Bytes()
	}
	return []struct {
		name string
		data []byte
		want string
	}{
		{"400 KB of [", bytes.Repeat([]byte("["), 400_000), "nests deeper than 64 levels"},
		{"200 KB of {a:", bytes.Repeat([]byte("{a: "), 50_000), "nests deeper than 64 levels"},
		{"100k keys", keys(100_000), "more than 10000 keys"},
		{"4 MiB flow list", append([]byte("l: ["), bytes.Repeat([]byte("x,"), 2<<20-4)...), "more than 10000 keys"},
		{"over 4 MiB", bytes.Repeat([]byte("# comment\n"), MaxFileBytes/10+1), "larger than 4 MiB"},
		{"NUL bytes", make([]byte, 1000), "not text"},
		{"nested dashes", bytes.Repeat([]byte("- "), 1000), "nests deeper than 64 levels"},
		{"nested indentation", indented(1000), "nests deeper than 64 levels"},
		// "]" inside strings does not close a level; the count of collections still bounds the nesting.
		{"closers in strings", bytes.Repeat([]byte(`["]", `), 5000), "more than 1024 flow collections"},
	}
}

func TestParseRefusesHostileShapesAtOnce(t *testing.T) {
	for _, tc := range hostileConfigs() {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := Parse("hostile.yaml", tc.data, noEnv)
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) != 1 || !strings.Contains(ce.Problems[0].Msg, tc.want) || ce.Problems[0].Hint == "" {
				t.Fatalf("err = %v, want one problem saying %q, with a hint", err, tc.want)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v to refuse", d)
			}
		})
	}
}

// A file of many {{name}} placeholders and a few levels is an ordinary config, whatever its length.
func TestShapeAllowsOrdinaryConfigs(t *testing.T) {
	if err := checkShape(readExample(t)); err != nil {
		t.Errorf("examples/tocsin.yaml: %v", err)
	}
	var b strings.Builder
	b.WriteString("probes:\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "  p%d: {path: \"/items/{{id}}/{{ sub }}\", headers: {X: \"{{token}}\"}}\n", i)
	}
	if _, err := measureShape([]byte(b.String()), shapeLimits{depth: MaxDepth, elements: 1 << 30, flows: 1 << 30}); err != nil {
		t.Errorf("2000 probes with placeholders: %v", err)
	}
	deep := "a:\n" + strings.Repeat("  ", 1) + "b: " + strings.Repeat("[", MaxDepth-3) + strings.Repeat("]", MaxDepth-3) + "\n"
	if err := checkShape([]byte(deep)); err != nil {
		t.Errorf("%d levels: %v", MaxDepth-1, err)
	}
}

func TestLoadStopsReadingAtTheCap(t *testing.T) {
	if _, err := os.Stat("/dev/zero"); err != nil {
		t.Skip("no /dev/zero")
	}
	start := time.Now()
	_, err := Load("/dev/zero")
	if err == nil || !strings.Contains(err.Error(), "config: /dev/zero is larger than 4 MiB (hint: ") {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("#\n"), MaxFileBytes/2+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); err == nil || !strings.Contains(err.Error(), "larger than 4 MiB") {
		t.Errorf("a regular file over the cap: err = %v", err)
	}
}

// FuzzShapeBound holds the parser to what measureShape assumes: a file it parses nests at most
// 2*maxBlock + flows + 2 levels, so that refusing by those estimates bounds the parser's work.
func FuzzShapeBound(f *testing.F) {
	for _, s := range []string{
		"a:\n b:\n  c: \"x\ny\"\n  d:\n   e: 1\n", // a quoted string continued at column 0
		"a:\n b:\n  c: [x,\ny]\n  d:\n   e: [1]\n",
		"a:\n- b:\n  - c:\n    - d\n",
		"- - - - x\n",
		"? - a\n  - b\n: c\n",
		"[\"]\", [\"]\", [x]]\n",
		"{{a}}: {{b}}\n",
		"k: {a: [b, {c: d}]}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 2048 {
			return
		}
		sh, err := measureShape(data, shapeLimits{depth: 1 << 30, elements: 1 << 30, flows: 1 << 30})
		if err != nil {
			t.Fatalf("no limit was set, yet: %v", err)
		}
		file, err := parseYAML(data)
		if err != nil {
			return
		}
		depth := 0
		for _, doc := range file.Docs {
			if doc != nil {
				depth = max(depth, astDepth(doc.Body, 0))
			}
		}
		if bound := 2*sh.maxBlock + sh.flows + 2; depth > bound {
			t.Fatalf("the parser nests %d levels, over the bound %d (block estimate %d, flow collections %d)", depth, bound, sh.maxBlock, sh.flows)
		}
	})
}

// astDepth is how many mappings and lists enclose the deepest node under n, plus depth.
func astDepth(n ast.Node, depth int) int {
	var children []ast.Node
	switch v := n.(type) {
	case *ast.MappingNode:
		depth++
		for _, kv := range v.Values {
			if kv != nil {
				children = append(children, kv.Key, kv.Value)
			}
		}
	case *ast.MappingValueNode: // a mapping of one pair
		depth++
		children = []ast.Node{v.Key, v.Value}
	case *ast.SequenceNode:
		depth++
		children = v.Values
	case *ast.AnchorNode:
		children = []ast.Node{v.Value}
	case *ast.TagNode:
		children = []ast.Node{v.Value}
	case *ast.MappingKeyNode:
		children = []ast.Node{v.Value}
	}
	deepest := depth
	for _, c := range children {
		deepest = max(deepest, astDepth(c, depth))
	}
	return deepest
}
