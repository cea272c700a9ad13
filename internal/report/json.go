package report

import (
	"encoding/json"
	"io"
)

// WriteJSON writes v (a *Report or a slice of them) as indented JSON, the format documented in
// docs/report-json.md.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
