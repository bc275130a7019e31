// Package httpjson reads and writes the JSON bodies of the REST dialects.
// Decoding is strict, because a lenient decoder silently drops what a
// client meant: unknown or mis-cased fields, duplicate keys (which one
// wins?), wrong types and trailing data are all refused. Every refusal is
// an *Error whose message is safe to show: it names fields, never values.
package httpjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
)

// MaxBodyBytes bounds a body even when the server did not wrap it in an
// http.MaxBytesReader.
const MaxBodyBytes = 1 << 20

// MaxDepth bounds nesting; the dialects' bodies are flat, and a bound
// keeps a hostile body from costing memory per level.
const MaxDepth = 32

// Kind says why a body was refused, so each dialect can pick its own
// error code.
type Kind int

const (
	MediaType      Kind = iota + 1 // Content-Type is not application/json
	TooLarge                       // over the byte limit
	Unreadable                     // the body could not be read
	Empty                          // no JSON value at all
	Syntax                         // not JSON
	TrailingData                   // more after the first value
	TooDeep                        // nested beyond MaxDepth
	DuplicateField                 // a key twice in one object
	UnknownField                   // a key the request type does not have
	WrongType                      // a value of the wrong JSON type
)

// Error is a refused body. Field is the field concerned, when known.
type Error struct {
	Kind    Kind
	Field   string
	Message string
}

func (e *Error) Error() string { return e.Message }

// Status is the HTTP status for the refusal: 415, 413 or 400.
func (e *Error) Status() int {
	switch e.Kind {
	case MediaType:
		return http.StatusUnsupportedMediaType
	case TooLarge:
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

func fail(k Kind, field, format string, args ...any) *Error {
	return &Error{Kind: k, Field: field, Message: fmt.Sprintf(format, args...)}
}

// IsTooLarge tells whether err comes from an http.MaxBytesReader.
func IsTooLarge(err error) bool {
	var mb *http.MaxBytesError
	return errors.As(err, &mb)
}

// CheckContentType accepts application/json, with charset utf-8 if any.
func CheckContentType(header string) error {
	mt, params, err := mime.ParseMediaType(header)
	if err != nil || mt != "application/json" {
		return fail(MediaType, "", "Content-Type must be application/json")
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return fail(MediaType, "", "Content-Type must be application/json with charset utf-8")
	}
	return nil
}

// Decode checks the request's Content-Type and reads its body strictly
// into v, a pointer to a struct. It returns nil or an *Error.
func Decode(r *http.Request, v any) error {
	if err := CheckContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	body, err := readBody(r.Body)
	if err != nil {
		return err
	}
	return Unmarshal(body, v)
}

func readBody(body io.Reader) ([]byte, error) {
	if body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(body, MaxBodyBytes+1))
	switch {
	case IsTooLarge(err), err == nil && len(b) > MaxBodyBytes:
		return nil, fail(TooLarge, "", "the body is larger than %d bytes", MaxBodyBytes)
	case err != nil:
		return nil, fail(Unreadable, "", "the body could not be read")
	}
	return b, nil
}

// Unmarshal decodes data strictly into v, a pointer to a struct.
func Unmarshal(data []byte, v any) error {
	return unmarshal(data, v, false)
}

// DecodeAsASPNET is Decode with the binding rules of an ASP.NET Core
// server (System.Text.Json with its web defaults), for a dialect whose
// product runs on one: member names match the struct's fields ignoring
// case, and members the type does not have are ignored (a client that
// echoes a response's fields back is not refused). What stays refused:
// a member given twice, also in another case ("id" and "Id": which one
// would win?), wrong types, bad syntax, trailing data, excessive nesting.
func DecodeAsASPNET(r *http.Request, v any) error {
	if err := CheckContentType(r.Header.Get("Content-Type")); err != nil {
		return err
	}
	body, err := readBody(r.Body)
	if err != nil {
		return err
	}
	return unmarshal(body, v, true)
}

// unmarshal decodes data into v, a pointer to a struct: strictly, or with
// ASP.NET's rules (loose).
func unmarshal(data []byte, v any, loose bool) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return fail(Empty, "", "the body is empty: send a JSON object")
	}
	fields := topLevelFields(v)
	if loose && fields != nil {
		fields = map[string]bool{} // any member; only an object
	}
	if err := checkStructure(data, fields, loose); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if !loose {
		dec.DisallowUnknownFields()
	}
	// encoding/json matches member names to fields ignoring case: in
	// strict mode checkStructure has refused any name that is not exact.
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	return nil
}

// decodeError turns what encoding/json reports into an *Error. Its own
// messages are not used: some quote parts of the body.
func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		return wrongType(te)
	case errors.As(err, &se):
		return fail(Syntax, "", "the body is not valid JSON (at byte %d)", se.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no error type for this; checkStructure has
		// already caught unknown top-level fields, so only nested ones
		// come here.
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return fail(UnknownField, name, "unknown field %q", truncate(name))
	}
	return fail(Syntax, "", "the body is not valid JSON")
}

func wrongType(te *json.UnmarshalTypeError) error {
	got, _, _ := strings.Cut(te.Value, " ") // "number -5": keep the kind only
	if te.Field == "" {
		return fail(WrongType, "", "the body must be a JSON object, not %s", article(got))
	}
	return fail(WrongType, te.Field, "field %q must be %s, not %s", te.Field, describe(te.Type.String()), article(got))
}

func describe(goType string) string {
	goType = strings.TrimLeft(goType, "*")
	switch {
	case goType == "string":
		return "a string"
	case goType == "bool":
		return "true or false"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "uint"), strings.HasPrefix(goType, "float"):
		return "a number"
	}
	return "an object"
}

func article(kind string) string {
	switch kind {
	case "array", "object":
		return "an " + kind
	case "bool":
		return "a boolean"
	case "":
		return "that"
	}
	return "a " + kind
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
