package surface

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// har is the part of a HAR 1.2 file tocsin reads.
type har struct {
	Log struct {
		Entries []struct {
			Request struct {
				Method   string      `json:"method"`
				URL      string      `json:"url"`
				Headers  []harHeader `json:"headers"`
				PostData *struct {
					MimeType string `json:"mimeType"`
					Text     string `json:"text"`
				} `json:"postData"`
			} `json:"request"`
			Response struct {
				Status  int `json:"status"`
				Content struct {
					MimeType string `json:"mimeType"`
					Text     string `json:"text"`
					Encoding string `json:"encoding"`
				} `json:"content"`
			} `json:"response"`
		} `json:"entries"`
	} `json:"log"`
}

type harHeader struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// HARScheme is the security scheme of recorded requests that carried a bearer token.
const HARScheme = "recorded-bearer"

// ParseHAR reads recorded traffic: each distinct request (method, path, query) on an origin keep
// accepts becomes an operation. A request that carried a bearer token requires HARScheme, and the
// token itself is dropped (the identity's is sent instead), with every other credential: cookies,
// headers and query parameters named like keys, tokens, secrets or sessions. A path segment that
// repeats a value an earlier POST answered with (an id it created) becomes a {parameter}, linked to
// that POST, so that a scan creates its own resource instead of reusing the recorded one.
func ParseHAR(data []byte, keep func(origin string) bool) (doc *Document, err error) {
	defer func() {
		if r := recover(); r != nil {
			doc, err = nil, fmt.Errorf("the HAR reader could not read this file (%v)", r)
		}
	}()
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("the file is larger than %d MiB", MaxBytes>>20)
	}
	var h har
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("not a HAR file (JSON with log.entries): %w", err)
	}
	if h.Log.Entries == nil {
		return nil, errors.New("not a HAR file: no log.entries")
	}
	d := &Document{Source: "HAR"}
	byKey := map[string]*Operation{}
	created := map[string]createdValue{} // values earlier POSTs answered with, the latest of each
	elsewhere := map[string]int{}
	bearer := false
	for _, e := range h.Log.Entries {
		req := e.Request
		u, err := url.Parse(req.URL)
		method := strings.ToUpper(req.Method)
		if err != nil || u.Scheme == "" || u.Host == "" || !slices.Contains(methodOrder, method) {
			continue
		}
		origin := u.Scheme + "://" + u.Host
		if keep != nil && !keep(origin) {
			elsewhere[origin]++
			continue
		}
		path := u.EscapedPath()
		if path == "" {
			path = "/"
		}
		templ, params, links := templatePath(path, created)
		op := &Operation{Method: method, Path: templ, Params: params, Headers: map[string]string{}, Query: cleanQuery(u.Query())}
		op.ID = op.Endpoint()
		if op.Query != "" {
			op.ID += "?" + op.Query
		}
		if prev, dup := byKey[op.ID]; dup {
			op = prev
		} else {
			for _, hd := range req.Headers {
				name := strings.ToLower(hd.Name)
				if name == "authorization" {
					if scheme, _, ok := strings.Cut(hd.Value, " "); ok && strings.EqualFold(scheme, "bearer") {
						op.Security = []Requirement{{{Scheme: HARScheme}}}
						bearer = true
					}
					continue
				}
				if keepHeader(name) {
					op.Headers[hd.Name] = hd.Value
				}
			}
			if pd := req.PostData; pd != nil && pd.Text != "" {
				op.Body = &Body{ContentType: pd.MimeType, Example: pd.Text, HasExample: true, Required: true}
			}
			byKey[op.ID] = op
			d.Operations = append(d.Operations, op)
		}
		for _, l := range links {
			l.source.Links = appendLink(l.source.Links, Link{Name: "recorded", Status: l.source.Responses[0].Status, Target: op.ID, Params: map[string]string{l.param: l.selector}})
		}
		resp := Response{Status: strconv.Itoa(e.Response.Status)}
		body := e.Response.Content.Text
		if e.Response.Content.Encoding == "base64" {
			if b, err := base64.StdEncoding.DecodeString(body); err == nil {
				body = string(b)
			}
		}
		var v any
		if isJSON(e.Response.Content.MimeType) && json.Unmarshal([]byte(body), &v) == nil {
			exampleShape(&resp, v)
			if obj, ok := v.(map[string]any); ok && method == "POST" && e.Response.Status/100 == 2 {
				for _, k := range sortedKeys(obj) {
					if s, ok := scalarText(obj[k]); ok && len(s) >= 3 {
						created[s] = createdValue{field: k, op: op}
					}
				}
			}
		}
		if !slices.ContainsFunc(op.Responses, func(r Response) bool { return r.Status == resp.Status }) {
			op.Responses = append(op.Responses, resp)
		}
	}
	if bearer {
		d.Schemes = []*Scheme{{Name: HARScheme, Type: "http", HTTPScheme: "bearer"}}
	}
	for _, origin := range sortedKeys(elsewhere) {
		d.Notes = append(d.Notes, fmt.Sprintf("%d recorded request(s) to %s left out: not an allowed origin", elsewhere[origin], origin))
	}
	return d, nil
}

// createdValue is where a value a POST answered with came from: the id of what it created, perhaps.
type createdValue struct {
	field string
	op    *Operation
}

type recordedLink struct {
	source          *Operation
	param, selector string
}

// templatePath replaces path segments that repeat a created value with a {parameter} named after
// the field it came from, and returns the links from the creating operations.
func templatePath(path string, created map[string]createdValue) (string, []Param, []recordedLink) {
	segs := strings.Split(path, "/")
	var params []Param
	var links []recordedLink
	for i, seg := range segs {
		c, ok := created[seg]
		if seg == "" || !ok {
			continue
		}
		name := c.field
		for n := 2; slices.ContainsFunc(params, func(p Param) bool { return p.Name == name }); n++ {
			name = fmt.Sprintf("%s%d", c.field, n)
		}
		segs[i] = "{" + name + "}"
		params = append(params, Param{Name: name, In: "path", Required: true, Example: seg, HasExample: true})
		sel, _ := pointerSelector("/" + c.field)
		links = append(links, recordedLink{source: c.op, param: name, selector: sel})
	}
	return strings.Join(segs, "/"), params, links
}

func appendLink(links []Link, l Link) []Link {
	for _, have := range links {
		if have.Target == l.Target {
			return links
		}
	}
	return append(links, l)
}

// credentialWords mark header and query names that carry credentials: never replayed.
var credentialWords = []string{"auth", "token", "key", "secret", "session", "cookie", "csrf", "xsrf", "password", "signature"}

func credentialName(name string) bool {
	name = strings.ToLower(name)
	return slices.ContainsFunc(credentialWords, func(w string) bool { return strings.Contains(name, w) })
}

// keepHeader reports whether a recorded header is replayed: not a credential, and not one the
// HTTP client sets itself (HTTP/2 pseudo-headers, hop-by-hop headers, lengths and encodings).
func keepHeader(name string) bool {
	if strings.HasPrefix(name, ":") || credentialName(name) {
		return false
	}
	switch name {
	case "host", "content-length", "connection", "keep-alive", "transfer-encoding", "te", "upgrade",
		"accept-encoding", "proxy-connection", "trailer", "expect":
		return false
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c) {
			return false
		}
	}
	return true
}

// cleanQuery re-encodes a recorded query without its credential parameters.
func cleanQuery(q url.Values) string {
	for name := range q {
		if credentialName(name) {
			q.Del(name)
		}
	}
	return q.Encode()
}
