package probe

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// maxExponent bounds the exponent of a number Extract will write out in full: 1e999999999 is valid
// JSON, and spelling it without an exponent would take a gigabyte.
const maxExponent = 1000

// Extract returns the scalar at a dot path in a JSON document: "id", "data.items.0.id". A segment
// indexes an object by key or, when the value there is an array, the array by a decimal index. Strings
// come back raw, numbers as written but without an exponent (1.5e3 -> 1500), booleans as true or false.
// A missing path, null, an object or an array is an error. body comes from the server under test, so
// any input must fail cleanly.
func Extract(body []byte, path string) (string, error) {
	if path == "" {
		return "", errors.New("empty path")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return "", fmt.Errorf("path %s: the response is not JSON: %w", path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return "", fmt.Errorf("path %s: the response has data after the JSON value", path)
	}
	v := doc
	segs := strings.Split(path, ".")
	for i, seg := range segs {
		at := strings.Join(segs[:i+1], ".") // the path so far, for messages
		switch node := v.(type) {
		case map[string]any:
			next, ok := node[seg]
			if !ok {
				return "", fmt.Errorf("path %s: no key %q", at, seg)
			}
			v = next
		case []any:
			n, err := strconv.Atoi(seg)
			if err != nil || n < 0 || strings.HasPrefix(seg, "+") {
				return "", fmt.Errorf("path %s: %q is not an index into an array", at, seg)
			}
			if n >= len(node) {
				return "", fmt.Errorf("path %s: index %d past the array's %d elements", at, n, len(node))
			}
			v = node[n]
		default:
			return "", fmt.Errorf("path %s: cannot index a %s", at, kind(v))
		}
	}
	switch x := v.(type) {
	case string:
		return x, nil
	case bool:
		return strconv.FormatBool(x), nil
	case json.Number:
		return plainNumber(string(x))
	}
	return "", fmt.Errorf("path %s: %s is not a scalar", path, kind(v))
}

func kind(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	}
	return "number"
}

// plainNumber writes a JSON number without an exponent, exactly (no float rounding: an id of
// 12345678901234567890 must survive). Integers without an exponent come back unchanged.
func plainNumber(s string) (string, error) {
	mant, expPart, hasExp := strings.Cut(strings.ToLower(s), "e")
	if !hasExp && !strings.Contains(mant, ".") {
		return s, nil
	}
	exp := 0
	if hasExp {
		var err error
		exp, err = strconv.Atoi(strings.TrimPrefix(expPart, "+"))
		if err != nil || exp > maxExponent || exp < -maxExponent {
			return "", fmt.Errorf("number %s is out of range", s)
		}
	}
	sign := ""
	if strings.HasPrefix(mant, "-") {
		sign, mant = "-", mant[1:]
	}
	intPart, fracPart, _ := strings.Cut(mant, ".")
	digits := intPart + fracPart
	point := len(intPart) + exp // where the decimal point falls in digits
	switch {
	case point <= 0:
		digits = strings.Repeat("0", 1-point) + digits
		point = 1
	case point > len(digits):
		digits += strings.Repeat("0", point-len(digits))
	}
	whole := strings.TrimLeft(digits[:point], "0")
	if whole == "" {
		whole = "0"
	}
	frac := strings.TrimRight(digits[point:], "0")
	if frac == "" {
		return sign + whole, nil
	}
	return sign + whole + "." + frac, nil
}
