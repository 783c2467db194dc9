package kmsapi

import (
	"encoding/json"
	"errors"
	"io"
	"strconv"
)

// JSONErrorMessage describes why a request body did not decode, for an
// error answer: the field and expected type, the offset of a syntax error,
// or a truncated body, and never the body itself. Other errors give
// fallback, or the error's own text when fallback is empty.
func JSONErrorMessage(err error, fallback string) string {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		if te.Field != "" {
			return "field " + te.Field + ": expected " + te.Type.String()
		}
		return "expected a JSON object"
	case errors.As(err, &se):
		return "malformed JSON at offset " + strconv.FormatInt(se.Offset, 10)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	case fallback != "":
		return fallback
	default:
		return err.Error()
	}
}
