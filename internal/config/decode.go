package config

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// The decoder walks goccy's AST itself instead of unmarshalling into structs, so that every field
// keeps its line, unknown and duplicate keys get precise messages, and ${NAME} is expanded with the
// field's path at hand.

var (
	topFields       = []string{"version", "target", "limits", "openapi", "har", "identities", "vars", "probes", "checks"}
	targetFields    = []string{"origins"}
	limitFields     = []string{"request_budget", "rate", "timeout", "max_window", "precision", "max_response_bytes"}
	identityFields  = []string{"token", "fresh", "teardown", "jwks_url", "scheme", "revoke", "downgrade", "restore"}
	tokenFields     = []string{"static", "command", "oauth2", "http"}
	oauth2Fields    = []string{"grant", "token_url", "client_id", "client_secret", "auth_style", "username", "password", "scopes"}
	revokeFields    = []string{"rfc7009", "http", "command"}
	changeFields    = []string{"http", "command"} // restore
	downgradeFields = []string{"http", "command", "removes"}
	surfaceFields   = []string{"source", "destructive", "single_use"} // openapi and har
	rfc7009Fields   = []string{"url", "client_id", "client_secret", "auth_style", "token_type_hint"}
	httpHookFields  = []string{"method", "url", "headers", "body", "expect"}
	probeFields     = []string{"method", "path", "headers", "body", "accept", "reject", "destructive", "extract", "as", "copies", "shared", "privileged", "list", "assign", "setup", "verify", "teardown"}
	// A step lists the chain keys only to say that chains do not nest.
	stepFields  = []string{"method", "path", "headers", "body", "accept", "reject", "extract", "as", "setup", "verify", "teardown"}
	loginFields = []string{"method", "path", "headers", "body", "accept", "reject", "extract"}
	listFields  = loginFields // a list request runs as the identity the check asks about: no as
	checkFields = []string{"identity", "verifier", "owner", "probes"}
)

type decoder struct {
	problems  problems
	fromEnv   []EnvValue
	lookupEnv func(string) (string, bool)
	lines     map[string]int
	keys      map[string]KeySpan
	anchors   map[string][]anchorDef
}

type anchorDef struct {
	offset int
	value  ast.Node
}

// entry is one key of a mapping.
type entry struct {
	key   string
	path  string
	line  int
	value ast.Node
}

func newDecoder(name string, lookupEnv func(string) (string, bool)) *decoder {
	return &decoder{
		problems:  problems{file: name},
		lookupEnv: lookupEnv,
		lines:     make(map[string]int),
		keys:      make(map[string]KeySpan),
		anchors:   make(map[string][]anchorDef),
	}
}

func (d *decoder) add(line int, field, msg, hint string) { d.problems.add(line, field, msg, hint) }

func (d *decoder) decodeFile(data []byte) *Config {
	cfg := &Config{
		file:       d.problems.file,
		lines:      d.lines,
		keys:       d.keys,
		Identities: make(map[string]*Identity),
		Vars:       make(map[string]string),
	}
	file, err := parseYAML(data)
	if err != nil {
		d.syntaxError(err)
		return cfg
	}
	var body ast.Node
	for _, doc := range file.Docs {
		if doc == nil || isEmptyNode(doc.Body) {
			continue
		}
		if body != nil {
			d.add(nodeLine(doc.Body), "", "more than one YAML document", "a config is a single document: remove the --- separator and what follows")
			break
		}
		body = doc.Body
	}
	if body == nil {
		d.add(1, "", "the config is empty", "start from examples/tocsin.yaml")
		return cfg
	}
	d.collectAnchors(body, 0)
	d.decodeConfig(cfg, body)
	cfg.FromEnv = d.fromEnv
	return cfg
}

// parseYAML parses without goccy's own duplicate-key check (ours names the field path) and turns a
// panic in the parser into an error: a config file must never crash the scanner.
func parseYAML(data []byte) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, errors.New("the YAML parser could not read this file")
		}
	}()
	return parser.ParseBytes(data, 0, parser.AllowDuplicateMapKey())
}

func (d *decoder) syntaxError(err error) {
	line, msg := 0, err.Error()
	var ye yaml.Error
	if errors.As(err, &ye) {
		msg = ye.GetMessage()
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			line = tk.Position.Line
		}
	}
	d.add(line, "", "invalid YAML: "+msg, "check the indentation and quoting on this line and the one before")
}

func isEmptyNode(n ast.Node) bool {
	switch n.(type) {
	case nil, *ast.NullNode, *ast.CommentGroupNode, *ast.CommentNode:
		return true
	}
	return false
}

// nodeLine is the line of n's first token, or 0.
func nodeLine(n ast.Node) int {
	if n == nil {
		return 0
	}
	switch v := n.(type) {
	case *ast.MappingNode:
		if len(v.Values) > 0 && v.Values[0] != nil {
			return nodeLine(v.Values[0])
		}
		return tokenLine(v.Start)
	case *ast.MappingValueNode:
		if v.Key != nil {
			return nodeLine(v.Key)
		}
		return tokenLine(v.Start)
	case *ast.SequenceNode:
		return tokenLine(v.Start)
	case *ast.StringNode:
		return tokenLine(v.Token)
	case *ast.IntegerNode:
		return tokenLine(v.Token)
	case *ast.FloatNode:
		return tokenLine(v.Token)
	case *ast.BoolNode:
		return tokenLine(v.Token)
	case *ast.NullNode:
		return tokenLine(v.Token)
	case *ast.InfinityNode:
		return tokenLine(v.Token)
	case *ast.NanNode:
		return tokenLine(v.Token)
	case *ast.LiteralNode:
		return tokenLine(v.Start)
	case *ast.MergeKeyNode:
		return tokenLine(v.Token)
	case *ast.AnchorNode:
		return tokenLine(v.Start)
	case *ast.AliasNode:
		return tokenLine(v.Start)
	case *ast.TagNode:
		return tokenLine(v.Start)
	case *ast.MappingKeyNode:
		return tokenLine(v.Start)
	}
	return 0
}

func tokenLine(tk *token.Token) int {
	if tk == nil || tk.Position == nil {
		return 0
	}
	return tk.Position.Line
}

func tokenOffset(tk *token.Token) int {
	if tk == nil || tk.Position == nil {
		return 0
	}
	return tk.Position.Offset
}

// collectAnchors records every &anchor with its offset, so that an alias resolves to the nearest
// anchor of that name before it, as YAML specifies. depth bounds the recursion on hostile input.
func (d *decoder) collectAnchors(n ast.Node, depth int) {
	if n == nil || depth > 200 {
		return
	}
	switch v := n.(type) {
	case *ast.AnchorNode:
		if name := scalarName(v.Name); name != "" && v.Value != nil {
			d.anchors[name] = append(d.anchors[name], anchorDef{offset: tokenOffset(v.Start), value: v.Value})
		}
		d.collectAnchors(v.Value, depth+1)
	case *ast.TagNode:
		d.collectAnchors(v.Value, depth+1)
	case *ast.MappingNode:
		for _, kv := range v.Values {
			if kv != nil {
				d.collectAnchors(kv, depth+1)
			}
		}
	case *ast.MappingValueNode:
		if v.Key != nil {
			d.collectAnchors(v.Key, depth+1)
		}
		d.collectAnchors(v.Value, depth+1)
	case *ast.MappingKeyNode:
		d.collectAnchors(v.Value, depth+1)
	case *ast.SequenceNode:
		for _, item := range v.Values {
			d.collectAnchors(item, depth+1)
		}
	}
}

func scalarName(n ast.Node) string {
	if s, ok := n.(*ast.StringNode); ok && s != nil {
		return s.Value
	}
	if n != nil {
		if tk := n.GetToken(); tk != nil {
			return tk.Value
		}
	}
	return ""
}

// resolve looks through anchors, tags and aliases to the node that holds the value. It reports a
// problem and returns false for an alias to no anchor.
func (d *decoder) resolve(n ast.Node, path string, line int) (ast.Node, bool) {
	for range 32 {
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.MappingKeyNode:
			n = v.Value
		case *ast.AliasNode:
			name := scalarName(v.Value)
			var target ast.Node
			for _, def := range d.anchors[name] {
				if def.offset < tokenOffset(v.Start) {
					target = def.value
				}
			}
			if target == nil {
				d.add(line, path, fmt.Sprintf("alias *%s refers to no anchor before it", name), "define &"+name+" earlier in the file")
				return nil, false
			}
			n = target
		default:
			return n, true
		}
	}
	d.add(line, path, "aliases nest too deeply", "refer to the anchored value directly")
	return nil, false
}

// mapping returns the keys of a mapping node in file order. A null node is an empty mapping.
// With allowed non-nil, other keys are reported as unknown fields; every kept key's line is recorded.
func (d *decoder) mapping(n ast.Node, path string, line int, allowed []string) []entry {
	n, ok := d.resolve(n, path, line)
	if !ok {
		return nil
	}
	var kvs []*ast.MappingValueNode
	switch v := n.(type) {
	case nil, *ast.NullNode:
		return nil
	case *ast.MappingNode:
		kvs = v.Values
	case *ast.MappingValueNode:
		kvs = []*ast.MappingValueNode{v}
	default:
		hint := ""
		if allowed != nil {
			hint = "expected fields: " + strings.Join(allowed, ", ")
		}
		d.add(line, path, "must be a mapping, not "+describe(n), hint)
		return nil
	}
	seen := make(map[string]int)
	var out []entry
	for _, kv := range kvs {
		if kv == nil || kv.Key == nil {
			continue
		}
		keyLine := nodeLine(kv.Key)
		if keyLine == 0 {
			keyLine = line
		}
		if kv.Key.IsMergeKey() {
			d.add(keyLine, path, "merge keys (<<) are not supported", "write the fields out, or use an alias (*name) for the whole value")
			continue
		}
		keyNode, ok := d.resolve(kv.Key, path, keyLine)
		if !ok {
			continue
		}
		key, _, ok := scalarText(keyNode)
		if !ok {
			d.add(keyLine, path, "a key must be a plain string, not "+describe(keyNode), "")
			continue
		}
		field := joinPath(path, key)
		if first, dup := seen[key]; dup {
			d.add(keyLine, field, fmt.Sprintf("duplicate key (first set on line %d)", first), "keep one of them")
			continue
		}
		seen[key] = keyLine
		if allowed != nil && !slices.Contains(allowed, key) {
			d.add(keyLine, field, fmt.Sprintf("unknown field %q", key), suggest(key, allowed))
			continue
		}
		d.lines[field] = keyLine
		d.keys[field] = keySpan(keyNode, keyLine)
		out = append(out, entry{key: key, path: field, line: keyLine, value: kv.Value})
	}
	return out
}

// keySpan is where a key is written, quotes included.
func keySpan(key ast.Node, line int) KeySpan {
	tk := key.GetToken()
	if tk == nil || tk.Position == nil {
		return KeySpan{Line: line}
	}
	col := tk.Position.Column
	return KeySpan{Line: line, Column: col, EndColumn: col + utf8.RuneCountInString(strings.TrimSpace(tk.Origin))}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// suggest names the allowed field nearest to key, or lists them all when none is near.
func suggest(key string, allowed []string) string {
	best, bestDist := "", math.MaxInt
	for _, a := range allowed {
		if dist := editDistance(strings.ToLower(key), a); dist < bestDist {
			best, bestDist = a, dist
		}
	}
	if best != "" && bestDist <= max(2, len(key)/3) {
		return fmt.Sprintf("did you mean %q?", best)
	}
	return "valid fields here: " + strings.Join(allowed, ", ")
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// describe names a node's kind for messages.
func describe(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case *ast.StringNode, *ast.LiteralNode:
		return "a string"
	case *ast.IntegerNode, *ast.FloatNode, *ast.InfinityNode, *ast.NanNode:
		return "a number"
	case *ast.BoolNode:
		return "true/false"
	case nil, *ast.NullNode:
		return "empty"
	}
	return "this kind of value"
}

// scalarText returns a scalar's text. isString is true for string nodes, whose text is expanded; for
// numbers and booleans the text is as written, so that "password: 0123" stays "0123".
func scalarText(n ast.Node) (text string, isString, ok bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true, true
	case *ast.LiteralNode:
		if v.Value == nil {
			return "", true, true
		}
		return v.Value.Value, true, true
	case *ast.NullNode:
		return "", false, true
	case *ast.IntegerNode, *ast.FloatNode, *ast.BoolNode, *ast.InfinityNode, *ast.NanNode:
		if tk := v.GetToken(); tk != nil {
			return tk.Value, false, true
		}
	}
	return "", false, false
}

// expand replaces ${NAME} with the environment variable's value and $${ with a literal ${.
func (d *decoder) expand(s, path string, line int) string {
	if !strings.Contains(s, "${") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		rest := s[i:]
		switch {
		case strings.HasPrefix(rest, "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(rest, "${"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				d.add(line, path, "unterminated ${", "write ${NAME}, or $${ for a literal ${")
				return s
			}
			name := rest[2:end]
			i += end + 1
			if !validEnvName(name) {
				d.add(line, path, fmt.Sprintf("%q is not an environment variable name", truncate(name, 40)),
					"use letters, digits and _ (not starting with a digit), or write $${ for a literal ${")
				continue
			}
			v, ok := d.lookupEnv(name)
			if !ok {
				d.add(line, path, fmt.Sprintf("environment variable %s is not set", name),
					fmt.Sprintf("export %s before running tocsin, or write $${ for a literal ${", name))
				continue
			}
			if v == "" {
				// Almost always a secret that did not arrive (an empty CI variable), which would
				// otherwise fail later and less clearly, as a token or password that is wrong.
				d.add(line, path, fmt.Sprintf("environment variable %s is set but empty", name),
					fmt.Sprintf("give %s a value before running tocsin, or write the empty value in the file instead of ${%s}", name, name))
				continue
			}
			b.WriteString(v)
			d.fromEnv = append(d.fromEnv, EnvValue{Field: path, Name: name, Value: v})
		default:
			b.WriteByte(s[i])
			i++
		}
	}
	return b.String()
}

func validEnvName(name string) bool {
	if name == "" {
		return false
	}
	for i, c := range name {
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// strOK decodes a string and reports whether that went without problems, so that callers parsing
// the string further do not report a second problem for the same value.
func (d *decoder) strOK(e entry) (string, bool) {
	before := len(d.problems.list)
	s := d.str(e)
	return s, len(d.problems.list) == before
}

// str decodes a string. Numbers and booleans are taken as written.
func (d *decoder) str(e entry) string {
	n, ok := d.resolve(e.value, e.path, e.line)
	if !ok {
		return ""
	}
	s, isString, ok := scalarText(n)
	if !ok {
		d.add(e.line, e.path, "must be a string, not "+describe(n), "")
		return ""
	}
	if isString {
		s = d.expand(s, e.path, e.line)
	}
	return s
}

// items returns a list's items as entries named path[i]. A null node is an empty list.
func (d *decoder) items(e entry, example string) []entry {
	n, ok := d.resolve(e.value, e.path, e.line)
	if !ok {
		return nil
	}
	switch v := n.(type) {
	case nil, *ast.NullNode:
		return nil
	case *ast.SequenceNode:
		out := make([]entry, 0, len(v.Values))
		for i, item := range v.Values {
			line := nodeLine(item)
			if line == 0 {
				line = e.line
			}
			path := fmt.Sprintf("%s[%d]", e.path, i)
			d.lines[path] = line
			out = append(out, entry{key: strconv.Itoa(i), path: path, line: line, value: item})
		}
		return out
	}
	d.add(e.line, e.path, "must be a list, not "+describe(n), "write a list, e.g. "+example)
	return nil
}

// strList decodes a list of strings; it returns a non-nil slice when the field is present.
func (d *decoder) strList(e entry, example string) []string {
	out := []string{}
	for _, item := range d.items(e, example) {
		out = append(out, d.str(item))
	}
	return out
}

func (d *decoder) intList(e entry, example string) []int {
	var out []int
	for _, item := range d.items(e, example) {
		if v, ok := d.integer(item); ok {
			out = append(out, int(v))
		}
	}
	return out
}

func (d *decoder) integer(e entry) (int64, bool) {
	n, ok := d.resolve(e.value, e.path, e.line)
	if !ok {
		return 0, false
	}
	switch v := n.(type) {
	case *ast.IntegerNode:
		switch x := v.Value.(type) {
		case int64:
			return x, true
		case uint64:
			if x <= math.MaxInt64 {
				return int64(x), true
			}
		}
		d.add(e.line, e.path, "number too large", "")
		return 0, false
	case *ast.StringNode, *ast.LiteralNode:
		s, ok := d.strOK(e)
		if !ok {
			return 0, false
		}
		if x, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
			return x, true
		}
	}
	d.add(e.line, e.path, "must be a whole number", "")
	return 0, false
}

func (d *decoder) number(e entry) (float64, bool) {
	n, ok := d.resolve(e.value, e.path, e.line)
	if !ok {
		return 0, false
	}
	var x float64
	var err error
	switch v := n.(type) {
	case *ast.IntegerNode:
		switch i := v.Value.(type) {
		case int64:
			x = float64(i)
		case uint64:
			x = float64(i)
		}
	case *ast.FloatNode:
		x = v.Value
	case *ast.StringNode, *ast.LiteralNode:
		s, ok := d.strOK(e)
		if !ok {
			return 0, false
		}
		x, err = strconv.ParseFloat(strings.TrimSpace(s), 64)
	default:
		err = errors.New("not a number")
	}
	if err != nil || math.IsNaN(x) || math.IsInf(x, 0) {
		d.add(e.line, e.path, "must be a number", "")
		return 0, false
	}
	return x, true
}

func (d *decoder) boolean(e entry) bool {
	n, ok := d.resolve(e.value, e.path, e.line)
	if !ok {
		return false
	}
	switch v := n.(type) {
	case *ast.BoolNode:
		return v.Value
	case *ast.StringNode, *ast.LiteralNode:
		s, ok := d.strOK(e)
		if !ok {
			return false
		}
		switch strings.TrimSpace(s) {
		case "true":
			return true
		case "false":
			return false
		}
	}
	d.add(e.line, e.path, "must be true or false", "")
	return false
}

func (d *decoder) duration(e entry) time.Duration {
	n, ok := d.resolve(e.value, e.path, e.line)
	if !ok {
		return 0
	}
	if _, _, ok := scalarText(n); !ok {
		d.add(e.line, e.path, "must be a duration, not "+describe(n), "write a Go duration such as 500ms, 5s or 1m30s")
		return 0
	}
	s, ok := d.strOK(e)
	if !ok {
		return 0
	}
	s = strings.TrimSpace(s)
	v, err := time.ParseDuration(s)
	if err != nil {
		msg := fmt.Sprintf("%q is not a duration", truncate(s, 40))
		if _, numErr := strconv.ParseFloat(s, 64); numErr == nil {
			msg = fmt.Sprintf("duration %q has no unit", s)
		}
		d.add(e.line, e.path, msg, "write a Go duration such as 500ms, 5s or 1m30s")
		return 0
	}
	return v
}

// strMap decodes a mapping of strings to strings; it returns a non-nil map when the field is present.
func (d *decoder) strMap(e entry) map[string]string {
	out := make(map[string]string)
	for _, kv := range d.mapping(e.value, e.path, e.line, nil) {
		out[kv.key] = d.str(kv)
	}
	return out
}
