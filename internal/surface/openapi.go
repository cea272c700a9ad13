package surface

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi2"
	"github.com/getkin/kin-openapi/openapi2conv"
	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v4"
)

// ParseOpenAPI reads an OpenAPI 3.0 or 3.1 document, or a Swagger 2.0 one (converted to OpenAPI 3),
// as JSON or YAML. $refs must point inside the document: a spec never makes tocsin read another
// file or URL.
func ParseOpenAPI(data []byte) (doc *Document, err error) {
	defer func() {
		// The parser and the converter are not ours; a hostile spec must not crash the scanner.
		if r := recover(); r != nil {
			doc, err = nil, fmt.Errorf("the OpenAPI parser could not read this document (%v)", r)
		}
	}()
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("the document is larger than %d MiB", MaxBytes>>20)
	}
	tree, err := plainTree(data)
	if err != nil {
		return nil, fmt.Errorf("not JSON or YAML: %w", err)
	}
	top, _ := tree.(map[string]any)
	if top == nil {
		return nil, errors.New("not an OpenAPI document: the top level is not a mapping")
	}
	var source string
	switch {
	case top["swagger"] != nil:
		v := fmt.Sprint(top["swagger"])
		if v != "2.0" {
			return nil, fmt.Errorf("swagger %q: only Swagger 2.0 is read", v)
		}
		source = "Swagger 2.0 (converted to OpenAPI 3)"
		js, err := json.Marshal(tree)
		if err != nil {
			return nil, err
		}
		var doc2 openapi2.T
		if err := json.Unmarshal(js, &doc2); err != nil {
			return nil, fmt.Errorf("Swagger 2.0: %w", err)
		}
		doc3, err := openapi2conv.ToV3(&doc2)
		if err != nil {
			return nil, fmt.Errorf("Swagger 2.0 to OpenAPI 3: %w", err)
		}
		if data, err = json.Marshal(doc3); err != nil {
			return nil, err
		}
	case top["openapi"] != nil:
		v := fmt.Sprint(top["openapi"])
		if !strings.HasPrefix(v, "3.") {
			return nil, fmt.Errorf("openapi %q: tocsin reads OpenAPI 3.0 and 3.1, and Swagger 2.0", v)
		}
		source = "OpenAPI " + v
	default:
		return nil, errors.New("not an OpenAPI document: no openapi or swagger field at the top level")
	}
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = false
	loader.Context = context.Background()
	loader.ReadFromURIFunc = func(*openapi3.Loader, *url.URL) ([]byte, error) {
		return nil, errors.New("references to other files or URLs are not followed")
	}
	spec, err := loader.LoadFromData(data)
	if err != nil {
		return nil, err
	}
	return fromOpenAPI(spec, source), nil
}

// maxTreeDepth bounds nesting in plainTree; far beyond any real spec.
const maxTreeDepth = 256

// maxAliasExpansions bounds YAML aliases followed, against a "billion laughs" document.
const maxAliasExpansions = 10_000

// plainTree decodes JSON or YAML into maps with string keys, lists and scalars, as JSON has them
// (YAML's unquoted 200: is a number, and a number cannot key a JSON object).
func plainTree(data []byte) (any, error) {
	var n yaml.Node
	if err := yaml.Unmarshal(data, &n); err != nil {
		return nil, err
	}
	aliases := 0
	var walk func(n *yaml.Node, depth int) (any, error)
	walk = func(n *yaml.Node, depth int) (any, error) {
		if depth > maxTreeDepth {
			return nil, fmt.Errorf("nests deeper than %d levels", maxTreeDepth)
		}
		switch n.Kind {
		case yaml.DocumentNode:
			if len(n.Content) == 0 {
				return nil, nil
			}
			return walk(n.Content[0], depth+1)
		case yaml.AliasNode:
			if aliases++; aliases > maxAliasExpansions || n.Alias == nil {
				return nil, errors.New("too many YAML aliases")
			}
			return walk(n.Alias, depth+1)
		case yaml.MappingNode:
			m := make(map[string]any, len(n.Content)/2)
			for i := 0; i+1 < len(n.Content); i += 2 {
				v, err := walk(n.Content[i+1], depth+1)
				if err != nil {
					return nil, err
				}
				m[n.Content[i].Value] = v
			}
			return m, nil
		case yaml.SequenceNode:
			l := make([]any, 0, len(n.Content))
			for _, c := range n.Content {
				v, err := walk(c, depth+1)
				if err != nil {
					return nil, err
				}
				l = append(l, v)
			}
			return l, nil
		case yaml.ScalarNode:
			var v any
			if err := n.Decode(&v); err != nil {
				return n.Value, nil
			}
			switch x := v.(type) {
			case string, bool, int, int64, float64, nil:
				return x, nil
			}
			return n.Value, nil
		}
		return nil, nil
	}
	return walk(&n, 0)
}

// fromOpenAPI walks a loaded spec into a Document.
func fromOpenAPI(spec *openapi3.T, source string) *Document {
	d := &Document{Source: source}
	if spec.Info != nil {
		d.Title = spec.Info.Title
	}
	base := ""
	for i, s := range spec.Servers {
		if s == nil {
			continue
		}
		u := serverURL(s)
		if p, err := url.Parse(u); err == nil {
			if i == 0 {
				base = strings.TrimSuffix(p.Path, "/")
			}
			if p.Scheme == "http" || p.Scheme == "https" {
				d.Servers = append(d.Servers, strings.TrimSuffix(u, "/"))
			}
		}
	}
	if spec.Components != nil {
		for _, name := range sortedKeys(spec.Components.SecuritySchemes) {
			if ref := spec.Components.SecuritySchemes[name]; ref != nil && ref.Value != nil {
				d.Schemes = append(d.Schemes, scheme(name, ref.Value))
			}
		}
	}
	if spec.Paths == nil {
		return d
	}
	paths := spec.Paths.Map()
	for _, path := range sortedKeys(paths) {
		item := paths[path]
		if item == nil {
			continue
		}
		ops := item.Operations()
		for _, method := range methodOrder {
			op := ops[method]
			if op == nil {
				continue
			}
			d.Operations = append(d.Operations, operation(base+path, method, item, op, spec.Security))
		}
	}
	// Links name their target by operationId or by a reference to its path and method.
	for _, o := range d.Operations {
		for i := range o.Links {
			l := &o.Links[i]
			if l.Target == "" && l.Unsupported == "" {
				l.Unsupported = "the link names no operation"
			} else if strings.HasPrefix(l.Target, "#/paths/") {
				l.Target = linkRefTarget(d, base, l.Target)
			}
			if l.Unsupported == "" && d.Operation(l.Target) == nil {
				l.Unsupported = fmt.Sprintf("no operation %q", l.Target)
			}
		}
	}
	return d
}

// serverURL fills a server URL's {variables} with their defaults.
func serverURL(s *openapi3.Server) string {
	u := s.URL
	for name, v := range s.Variables {
		if v != nil {
			u = strings.ReplaceAll(u, "{"+name+"}", v.Default)
		}
	}
	return u
}

// linkRefTarget resolves an operationRef such as #/paths/~1items~1{id}/get to the operation's ID.
func linkRefTarget(d *Document, base, ref string) string {
	rest := strings.TrimPrefix(ref, "#/paths/")
	i := strings.LastIndexByte(rest, '/')
	if i < 0 {
		return ref
	}
	path := strings.NewReplacer("~1", "/", "~0", "~").Replace(rest[:i])
	if o := d.Operation(strings.ToUpper(rest[i+1:]) + " " + base + path); o != nil {
		return o.ID
	}
	return ref
}

func scheme(name string, s *openapi3.SecurityScheme) *Scheme {
	out := &Scheme{Name: name, Type: s.Type, HTTPScheme: strings.ToLower(s.Scheme), In: s.In, Param: s.Name, OpenIDConnectURL: s.OpenIdConnectUrl}
	if f := s.Flows; f != nil {
		for _, x := range []struct {
			grant string
			flow  *openapi3.OAuthFlow
		}{{"password", f.Password}, {"client_credentials", f.ClientCredentials}, {"authorization_code", f.AuthorizationCode}, {"implicit", f.Implicit}} {
			if x.flow != nil {
				out.Flows = append(out.Flows, Flow{Grant: x.grant, TokenURL: x.flow.TokenURL, Scopes: sortedKeys(x.flow.Scopes)})
			}
		}
	}
	return out
}

func operation(path, method string, item *openapi3.PathItem, op *openapi3.Operation, global openapi3.SecurityRequirements) *Operation {
	o := &Operation{ID: op.OperationID, Method: method, Path: path, Summary: op.Summary}
	if o.ID == "" {
		o.ID = o.Endpoint()
	}
	// Parameters of the path item apply unless the operation redefines them.
	seen := map[string]bool{}
	for _, list := range []openapi3.Parameters{op.Parameters, item.Parameters} {
		for _, ref := range list {
			if ref == nil || ref.Value == nil || seen[ref.Value.In+" "+ref.Value.Name] {
				continue
			}
			p := ref.Value
			seen[p.In+" "+p.Name] = true
			param := Param{Name: p.Name, In: p.In, Required: p.Required || p.In == "path"}
			param.Example, param.HasExample = paramExample(p)
			o.Params = append(o.Params, param)
		}
	}
	security := global
	if op.Security != nil {
		security = *op.Security
	}
	for _, req := range security {
		r := Requirement{}
		for _, name := range sortedKeys(req) {
			scopes := slices.Clone(req[name])
			slices.Sort(scopes)
			r = append(r, SchemeScopes{Scheme: name, Scopes: scopes})
		}
		o.Security = append(o.Security, r)
	}
	if op.RequestBody != nil && op.RequestBody.Value != nil {
		o.Body = requestBody(op.RequestBody.Value)
		if mt := jsonMedia(op.RequestBody.Value.Content); mt != nil {
			readOnly(o, mt.Schema)
		}
	}
	if op.Responses != nil {
		responses := op.Responses.Map()
		for _, status := range sortedKeys(responses) {
			ref := responses[status]
			if ref == nil || ref.Value == nil {
				continue
			}
			r := Response{Status: strings.ToUpper(status)}
			if r.Status == "DEFAULT" {
				r.Status = "default"
			}
			if mt := jsonMedia(ref.Value.Content); mt != nil {
				shape(&r, mt)
				if n := statusNumber(r.Status); n/100 == 2 || r.Status == "2XX" {
					readOnly(o, mt.Schema)
				}
			}
			o.Responses = append(o.Responses, r)
			for _, name := range sortedKeys(ref.Value.Links) {
				if l := ref.Value.Links[name]; l != nil && l.Value != nil {
					o.Links = append(o.Links, link(name, r.Status, l.Value))
				}
			}
		}
	}
	return o
}

// paramExample returns a parameter's example: example, then the first of examples, then its
// schema's example, default or only enum value.
func paramExample(p *openapi3.Parameter) (string, bool) {
	if p.Example != nil {
		return scalarText(p.Example)
	}
	for _, name := range sortedKeys(p.Examples) {
		if ex := p.Examples[name]; ex != nil && ex.Value != nil && ex.Value.Value != nil {
			return scalarText(ex.Value.Value)
		}
	}
	if p.Schema != nil && p.Schema.Value != nil {
		s := p.Schema.Value
		for _, v := range []any{s.Example, s.Default} {
			if v != nil {
				return scalarText(v)
			}
		}
		if len(s.Examples) > 0 {
			return scalarText(s.Examples[0])
		}
		if len(s.Enum) == 1 {
			return scalarText(s.Enum[0])
		}
	}
	return "", false
}

// scalarText is a parameter value as it goes in a URL.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case int, int64, uint64:
		return fmt.Sprint(x), true
	}
	return "", false
}

// jsonMedia picks the JSON media type of a content map: application/json, else any +json or
// */json one, else nil.
func jsonMedia(content openapi3.Content) *openapi3.MediaType {
	if mt := content["application/json"]; mt != nil {
		return mt
	}
	for _, ct := range sortedKeys(content) {
		if isJSON(ct) {
			return content[ct]
		}
	}
	// Swagger 2.0 without consumes converts to */*: JSON is what such APIs take.
	return content["*/*"]
}

func isJSON(contentType string) bool {
	ct, _, _ := strings.Cut(strings.ToLower(contentType), ";")
	ct = strings.TrimSpace(ct)
	return ct == "application/json" || strings.HasSuffix(ct, "+json") || strings.HasSuffix(ct, "/json")
}

// requestBody describes a body with an example to send: JSON when the API takes it, else a form.
func requestBody(rb *openapi3.RequestBody) *Body {
	b := &Body{Required: rb.Required, Fields: map[string]string{}}
	for _, m := range rb.Content {
		if m == nil || m.Schema == nil || m.Schema.Value == nil {
			continue
		}
		for name, prop := range m.Schema.Value.Properties {
			if prop != nil && prop.Value != nil && prop.Value.Type != nil && len(*prop.Value.Type) > 0 {
				b.Fields[name] = (*prop.Value.Type)[0]
			} else {
				b.Fields[name] = ""
			}
		}
	}
	mt := jsonMedia(rb.Content)
	if mt != nil {
		b.ContentType = "application/json"
		for ct := range rb.Content {
			if rb.Content[ct] == mt && ct != "*/*" {
				b.ContentType = ct
			}
		}
		if v, ok := mediaExample(mt); ok {
			if js, err := json.Marshal(v); err == nil {
				b.Example, b.HasExample = string(js), true
			}
		} else if mt.Schema != nil {
			if v, ok := schemaExample(mt.Schema, 0); ok {
				js, _ := json.Marshal(v)
				b.Example, b.HasExample = string(js), true
			}
		}
		return b
	}
	for _, ct := range sortedKeys(rb.Content) {
		b.ContentType = ct
		if ct == "application/x-www-form-urlencoded" {
			if m := rb.Content[ct]; m != nil && m.Schema != nil {
				if v, ok := schemaExample(m.Schema, 0); ok {
					if obj, isObj := v.(map[string]any); isObj {
						form := url.Values{}
						for k, x := range obj {
							s, _ := scalarText(x)
							form.Set(k, s)
						}
						b.Example, b.HasExample = form.Encode(), true
					}
				}
			}
		}
		break
	}
	return b
}

// mediaExample returns a media type's example, or the first of its examples.
func mediaExample(mt *openapi3.MediaType) (any, bool) {
	if mt.Example != nil {
		return mt.Example, true
	}
	for _, name := range sortedKeys(mt.Examples) {
		if ex := mt.Examples[name]; ex != nil && ex.Value != nil && ex.Value.Value != nil {
			return ex.Value.Value, true
		}
	}
	if mt.Schema != nil && mt.Schema.Value != nil && mt.Schema.Value.Example != nil {
		return mt.Schema.Value.Example, true
	}
	return nil, false
}

// maxSchemaDepth bounds the walk through nested (and recursive) schemas, and maxSchemaNodes the
// schemas one example visits: a schema whose properties are itself would otherwise cost its
// properties to the power of the depth.
const (
	maxSchemaDepth = 8
	maxSchemaNodes = 500
)

// schemaExample builds a value from a schema: its example or default, else, for an object, its
// required properties (all of them when it names none required), each built the same way. A string
// with no example is a unique name, so that what tocsin creates can be told apart.
func schemaExample(ref *openapi3.SchemaRef, depth int) (any, bool) {
	budget := maxSchemaNodes
	return schemaValue(ref, depth, &budget)
}

func schemaValue(ref *openapi3.SchemaRef, depth int, budget *int) (any, bool) {
	*budget--
	if ref == nil || ref.Value == nil || depth > maxSchemaDepth || *budget < 0 {
		return nil, false
	}
	s := ref.Value
	for _, v := range []any{s.Example, s.Default} {
		if v != nil {
			return v, true
		}
	}
	if len(s.Examples) > 0 {
		return s.Examples[0], true
	}
	if len(s.Enum) > 0 {
		return s.Enum[0], true
	}
	if len(s.AllOf) > 0 {
		merged := map[string]any{}
		for _, part := range s.AllOf {
			v, ok := schemaValue(part, depth+1, budget)
			obj, isObj := v.(map[string]any)
			if !ok || !isObj {
				return nil, false
			}
			for k, x := range obj {
				merged[k] = x
			}
		}
		return merged, true
	}
	for _, alts := range []openapi3.SchemaRefs{s.OneOf, s.AnyOf} {
		if len(alts) > 0 {
			return schemaValue(alts[0], depth+1, budget)
		}
	}
	switch {
	case s.Type.Is("object") || s.Type == nil && len(s.Properties) > 0:
		obj := map[string]any{}
		names := s.Required
		if len(names) == 0 {
			names = sortedKeys(s.Properties)
		}
		for _, name := range names {
			v, ok := schemaValue(s.Properties[name], depth+1, budget)
			if !ok {
				if slices.Contains(s.Required, name) {
					return nil, false
				}
				continue
			}
			obj[name] = v
		}
		return obj, true
	case s.Type.Includes("string"):
		if s.Format != "" && s.Format != "password" {
			return nil, false // a date or an email we would have to make up: better to say so
		}
		return "tocsin-{{uuid}}", true
	case s.Type.Includes("integer"), s.Type.Includes("number"):
		if s.Min != nil {
			return *s.Min, true
		}
		return 1, true
	case s.Type.Includes("boolean"):
		return false, true
	case s.Type.Includes("array"):
		return []any{}, true
	}
	return nil, false
}

// shape records what a JSON response body holds: its fields, or where its list of objects is.
func shape(r *Response, mt *openapi3.MediaType) {
	if mt.Schema != nil && mt.Schema.Value != nil {
		s := mt.Schema.Value
		switch {
		case s.Type.Is("array") && s.Items != nil && s.Items.Value != nil:
			r.List, r.ListFields = true, objectFields(s.Items.Value)
		default:
			r.Fields = objectFields(s)
			for _, name := range r.Fields {
				p := s.Properties[name]
				if p != nil && p.Value != nil && p.Value.Type.Is("array") && p.Value.Items != nil && p.Value.Items.Value != nil {
					if fields := objectFields(p.Value.Items.Value); len(fields) > 0 && !r.List {
						r.List, r.ListPath, r.ListFields = true, name, fields
					}
				}
			}
		}
	}
	if ex, ok := mediaExample(mt); ok && len(r.Fields) == 0 && !r.List {
		exampleShape(r, ex)
	}
}

// exampleShape reads a body's shape from an example value.
func exampleShape(r *Response, v any) {
	switch x := v.(type) {
	case map[string]any:
		r.Fields = sortedKeys(x)
		for _, k := range r.Fields {
			if l, ok := x[k].([]any); ok && len(l) > 0 {
				if item, ok := l[0].(map[string]any); ok && !r.List {
					r.List, r.ListPath, r.ListFields = true, k, sortedKeys(item)
				}
			}
		}
	case []any:
		if len(x) > 0 {
			if item, ok := x[0].(map[string]any); ok {
				r.List, r.ListFields = true, sortedKeys(item)
			}
		}
	}
}

// objectFields returns the property names of an object schema, allOf parts included.
func objectFields(s *openapi3.Schema) []string {
	fields := sortedKeys(s.Properties)
	for _, part := range s.AllOf {
		if part != nil && part.Value != nil {
			fields = append(fields, sortedKeys(part.Value.Properties)...)
		}
	}
	slices.Sort(fields)
	return slices.Compact(fields)
}

// readOnly records the top-level properties of an object schema (allOf parts included) that are
// marked readOnly, with their type.
func readOnly(o *Operation, ref *openapi3.SchemaRef) {
	if ref == nil || ref.Value == nil {
		return
	}
	parts := []*openapi3.Schema{ref.Value}
	for _, part := range ref.Value.AllOf {
		if part != nil && part.Value != nil {
			parts = append(parts, part.Value)
		}
	}
	for _, s := range parts {
		for _, name := range sortedKeys(s.Properties) {
			p := s.Properties[name]
			if p == nil || p.Value == nil || !p.Value.ReadOnly {
				continue
			}
			if o.ReadOnly == nil {
				o.ReadOnly = map[string]string{}
			}
			typ := ""
			if p.Value.Type != nil && len(*p.Value.Type) > 0 {
				typ = (*p.Value.Type)[0]
			}
			o.ReadOnly[name] = typ
		}
	}
}

// link converts an OpenAPI link. Only values taken from the response body can be followed: the
// setup that runs the source operation extracts them.
func link(name, status string, l *openapi3.Link) Link {
	out := Link{Name: name, Status: status, Target: l.OperationID, Params: map[string]string{}}
	if out.Target == "" {
		out.Target = l.OperationRef
	}
	for _, param := range sortedKeys(l.Parameters) {
		target := param
		if _, after, ok := strings.Cut(param, "."); ok && slices.Contains([]string{"path", "query", "header", "cookie"}, param[:strings.IndexByte(param, '.')]) {
			target = after
		}
		expr, isString := l.Parameters[param].(string)
		switch {
		case !isString:
			out.Unsupported = fmt.Sprintf("parameter %s: only $response.body expressions are followed", param)
		case strings.HasPrefix(expr, "$response.body#"):
			sel, ok := pointerSelector(strings.TrimPrefix(expr, "$response.body#"))
			if !ok {
				out.Unsupported = fmt.Sprintf("parameter %s: %q is not a JSON pointer tocsin can follow", param, expr)
				continue
			}
			out.Params[target] = sel
		default:
			out.Unsupported = fmt.Sprintf("parameter %s: %q: only $response.body expressions are followed", param, expr)
		}
	}
	return out
}

// pointerSelector turns a JSON pointer (/data/0/id) into a gjson path (data.0.id).
func pointerSelector(ptr string) (string, bool) {
	if ptr == "" || ptr[0] != '/' {
		return "", false
	}
	var parts []string
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = strings.NewReplacer("~1", "/", "~0", "~").Replace(tok)
		if tok == "" {
			return "", false
		}
		var b strings.Builder
		for _, c := range tok {
			if strings.ContainsRune(`.*?|#@\"!=<>%{}[](),:`, c) {
				b.WriteByte('\\')
			}
			b.WriteRune(c)
		}
		parts = append(parts, b.String())
	}
	return strings.Join(parts, "."), true
}

// sortedKeys returns a map's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
