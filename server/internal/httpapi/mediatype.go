package httpapi

import (
	"errors"
	"mime"
)

// ErrUnsupportedMediaType: a JSON route got a body of another type (415).
var ErrUnsupportedMediaType = errors.New("unsupported media type")

// isJSONContentType reports whether a Content-Type header names JSON
// (application/json, with any parameters such as charset).
func isJSONContentType(h string) bool {
	switch h {
	case "application/json", "application/json; charset=utf-8": // what clients send: no parse
		return true
	}
	mt, _, err := mime.ParseMediaType(h)
	return err == nil && mt == "application/json"
}
