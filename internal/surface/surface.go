// Package surface reads an API's surface (its operations and how they authenticate) from an
// OpenAPI document (3.0, 3.1, or Swagger 2.0 converted to 3) or from recorded traffic (a HAR file),
// and turns operations into probe templates. It knows nothing about checks: which operation feeds
// which check is for the checks to decide, from what this package says about each operation.
//
// Both inputs are untrusted: they are bounded in size before they are parsed (MaxBytes), a parser
// panic is an error, and a spec never makes tocsin read another file or URL (external $refs are
// refused).
package surface

import (
	"slices"
	"strings"
)

// MaxBytes is the largest spec or HAR file read: the config's own bound.
const MaxBytes = 4 << 20

// Document is what tocsin knows of an API from one source.
type Document struct {
	// Source says where the operations came from: "OpenAPI 3.1.0", "Swagger 2.0 (converted to
	// OpenAPI 3)" or "HAR".
	Source  string
	Title   string
	Servers []string // absolute server URLs (scheme://host[:port][/base]), first is the default
	Schemes []*Scheme
	// Operations in document order: paths as written, methods in methodOrder.
	Operations []*Operation
	// Notes say what was left out of the source, and why.
	Notes []string
}

// Scheme is a security scheme.
type Scheme struct {
	Name       string
	Type       string // oauth2, http, apiKey, openIdConnect
	HTTPScheme string // for http: bearer, basic, ...
	In, Param  string // for apiKey: header, query or cookie, and the parameter's name
	Flows      []Flow // for oauth2
	// OpenIDConnectURL is the discovery document of an openIdConnect scheme.
	OpenIDConnectURL string
}

// Flow is one OAuth2 flow of a scheme.
type Flow struct {
	Grant    string // password, client_credentials, authorization_code, implicit
	TokenURL string
	Scopes   []string // sorted
}

// Operation is one method on one path.
type Operation struct {
	// ID is the operationId, or "METHOD /path" when the source gives none.
	ID      string
	Method  string // upper case
	Path    string // template with the server's base path: /v1/items/{id}
	Summary string
	Params  []Param
	// Security lists the alternatives of what the operation requires: any one suffices, and an
	// alternative needs all of its schemes. Empty: the operation declares no security (public).
	Security  []Requirement
	Body      *Body // nil: no request body
	Responses []Response
	Links     []Link
	// Headers are request headers recorded in traffic (credentials removed), sent as they were.
	Headers map[string]string
	// Query is the query string recorded in traffic, sent as it was ("" for none).
	Query string
	// ReadOnly are the top-level properties that the request body's schema or a success
	// response's schema marks readOnly (the server sets them: id, owner, role), with their JSON
	// type ("" when not given). authz/mass-assignment tries to set them.
	ReadOnly map[string]string
}

// Param is a path, query or header parameter.
type Param struct {
	Name, In string // In: path, query, header or cookie
	Required bool
	Example  string // a value from the spec's examples or defaults, or the recording
	// HasExample distinguishes an empty example from none.
	HasExample bool
}

// Requirement is one alternative of an operation's security: all of its schemes together.
type Requirement []SchemeScopes

// SchemeScopes is a scheme and the scopes an operation needs of it.
type SchemeScopes struct {
	Scheme string
	Scopes []string
}

// Scopes returns every scope the alternative names, sorted.
func (r Requirement) Scopes() []string {
	var out []string
	for _, s := range r {
		out = append(out, s.Scopes...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Body is a request body.
type Body struct {
	ContentType string
	Required    bool
	// Example is the body to send: the spec's example, or one built from the schema's required
	// properties. Empty with HasExample false when neither could be had.
	Example    string
	HasExample bool
	// Fields are the top-level properties of its schema, with their types (e.g. "scopes": "array").
	Fields map[string]string
}

// Response is one documented (or recorded) response.
type Response struct {
	Status string // "200", "2XX" or "default"
	// Fields are the top-level properties of a JSON object body (from its schema or example).
	Fields []string
	// List is set when the body is a list of objects: ListPath is where the array is ("" when the
	// body is the array), ListFields the properties of its items.
	List       bool
	ListPath   string
	ListFields []string
}

// Link says that a value from this operation's response can fill a parameter of another
// operation (OpenAPI links, or values seen in recorded traffic).
type Link struct {
	Name   string
	Status string // the response it hangs on
	Target string // the target operation's ID
	// Params maps the target's parameter names to a gjson selector into this response's body.
	Params map[string]string
	// Unsupported says why the link cannot be followed (an expression other than $response.body),
	// or is empty.
	Unsupported string
}

// Public reports whether the operation declares no security requirement, or one alternative that
// needs nothing (security: [{}]).
func (o *Operation) Public() bool {
	if len(o.Security) == 0 {
		return true
	}
	return slices.ContainsFunc(o.Security, func(r Requirement) bool { return len(r) == 0 })
}

// Read reports whether the operation only reads (GET or HEAD).
func (o *Operation) Read() bool { return o.Method == "GET" || o.Method == "HEAD" }

// Endpoint is "METHOD /path", as reports name an operation.
func (o *Operation) Endpoint() string { return o.Method + " " + o.Path }

// SuccessStatuses returns the documented 2xx statuses as numbers; nil when only a range (2XX), a
// default or nothing is documented, which the caller takes as any 2xx.
func (o *Operation) SuccessStatuses() []int { return o.statuses(2) }

// statuses returns the documented statuses of class c (2 for 2xx) as numbers.
func (o *Operation) statuses(c int) []int {
	var out []int
	for _, r := range o.Responses {
		if n := statusNumber(r.Status); n/100 == c {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// statusNumber parses a three-digit status; 0 for ranges, default and anything else.
func statusNumber(s string) int {
	if len(s) != 3 {
		return 0
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	if n < 100 || n > 599 {
		return 0
	}
	return n
}

// success returns the first documented success response with a body shape, or nil.
func (o *Operation) success() *Response {
	var best *Response
	for i := range o.Responses {
		r := &o.Responses[i]
		if r.Status == "2XX" || r.Status == "default" || statusNumber(r.Status)/100 == 2 {
			if best == nil || len(best.Fields) == 0 && !best.List {
				best = r
			}
		}
	}
	return best
}

// Operation returns the operation with the given ID or endpoint ("METHOD /path"), or nil.
func (d *Document) Operation(ref string) *Operation {
	for _, o := range d.Operations {
		if o.ID == ref {
			return o
		}
	}
	method, path, ok := strings.Cut(ref, " ")
	if !ok {
		return nil
	}
	for _, o := range d.Operations {
		if o.Method == strings.ToUpper(method) && o.Path == path {
			return o
		}
	}
	return nil
}

// Scheme returns the named security scheme, or nil.
func (d *Document) Scheme(name string) *Scheme {
	for _, s := range d.Schemes {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// PathParams returns the names of the {params} in a path template, in order.
func PathParams(path string) []string {
	var out []string
	for {
		i := strings.IndexByte(path, '{')
		if i < 0 {
			return out
		}
		j := strings.IndexByte(path[i:], '}')
		if j < 0 {
			return out
		}
		out = append(out, path[i+1:i+j])
		path = path[i+j+1:]
	}
}

// methodOrder is the order operations on one path are listed in.
var methodOrder = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"}
