package probe

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/tidwall/gjson"
)

// maxExponent bounds the exponent of a number Extract will write out in full: 1e999999999 is valid
// JSON, and spelling it without an exponent would take a gigabyte.
const maxExponent = 1000

// Extract returns the scalar that a selector picks from a JSON document. Selectors are gjson paths
// (github.com/tidwall/gjson, documented in examples/tocsin.yaml): a dot path such as "id" or
// "data.items.0.id", and beyond it queries on arrays, such as "items.#(used==false).id" (the first
// element whose used is false), "items.#(used==false)#.id|@reverse|0" (the last one) or
// "items.#(code==\"X\").id". Strings come back raw, numbers as written but without an exponent
// (1.5e3 -> 1500), booleans as true or false. A selector that matches nothing, null, an object or an
// array is an error. body comes from the server under test, so any input must fail cleanly.
func Extract(body []byte, selector string) (string, error) {
	if selector == "" {
		return "", errors.New("empty selector")
	}
	if !gjson.ValidBytes(body) {
		return "", fmt.Errorf("selector %s: the response is not JSON", selector)
	}
	res := gjson.GetBytes(body, selector)
	switch res.Type {
	case gjson.String:
		return res.Str, nil
	case gjson.True, gjson.False:
		return strconv.FormatBool(res.Bool()), nil
	case gjson.Number:
		return plainNumber(strings.TrimSpace(res.Raw))
	case gjson.Null:
		if !res.Exists() {
			return "", fmt.Errorf("selector %s matches nothing in the response", selector)
		}
		return "", fmt.Errorf("selector %s: the value is null, not a scalar", selector)
	}
	if res.IsArray() {
		return "", fmt.Errorf("selector %s: the value is an array, not a scalar (hint: select one element, e.g. %s.0 or %s.#(field==value), or a field of it)", selector, selector, selector)
	}
	return "", fmt.Errorf("selector %s: the value is an object, not a scalar (hint: select one of its fields, e.g. %s.id)", selector, selector)
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
