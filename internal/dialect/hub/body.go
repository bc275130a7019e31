package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/apikey-operator/apikey-operator/internal/dialect/httpjson"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

// MaxBodyBytes bounds a request body. The server wraps bodies in a
// MaxBytesReader of the same size; the handler does it again so it is
// safe on its own.
const MaxBodyBytes = 1 << 20

// createRequest is the body of a create: name and role_id required.
// emptyIPs: the client sent "ips": [] (not null), which answers show back.
type createRequest struct {
	name, roleID string
	ips          []string
	emptyIPs     bool
}

// updateRequest is the body of a PATCH: nil fields were not sent. ips
// points to an empty list when the client sent null or [] (clear);
// emptyIPs tells [] from null.
type updateRequest struct {
	name, roleID *string
	ips          *[]string
	emptyIPs     bool
}

// fields are the members of a request body's top-level object.
type fields map[string]json.RawMessage

// readBody checks the content type and reads the body as one JSON object.
func readBody(w http.ResponseWriter, r *http.Request) (fields, *apiError) {
	if e := checkContentType(r.Header.Get("Content-Type")); e != nil {
		return nil, e
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, fromError(errorContext{}, err)
		}
		return nil, syntaxError("the request body could not be read")
	}
	return parseObject(body)
}

// checkContentType is every dialect's rule (httpjson), in hub's shape.
func checkContentType(ct string) *apiError {
	if httpjson.CheckContentType(ct) != nil {
		return newError(http.StatusUnsupportedMediaType, codeContentType, "send the body as Content-Type: application/json")
	}
	return nil
}

// parseObject reads exactly one JSON object. Unlike json.Unmarshal it
// rejects a repeated member name (which would otherwise let the last one
// win silently) and trailing data. Only the top level needs the check:
// no field of this dialect holds an object.
func parseObject(body []byte) (fields, *apiError) {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	switch {
	case err == io.EOF:
		return nil, syntaxError("the request body is empty: send a JSON object")
	case err != nil:
		return nil, syntaxError("the request body is not valid JSON")
	case tok != json.Delim('{'):
		return nil, syntaxError("the request body must be a JSON object")
	}
	out := fields{}
	for dec.More() {
		tok, err := dec.Token()
		name, ok := tok.(string)
		if err != nil || !ok {
			return nil, syntaxError("the request body is not valid JSON")
		}
		if _, dup := out[name]; dup {
			return nil, syntaxError("the member " + quoteShort(name) + " appears more than once").at(name)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, syntaxError("the request body is not valid JSON")
		}
		out[name] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, syntaxError("the request body is not valid JSON")
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, syntaxError("the request body must hold one JSON object and nothing after it")
	}
	return out, nil
}

// only rejects members the operation does not know: a typo must not
// be ignored silently. JSON names are matched exactly, case included.
func (f fields) only(known ...string) *apiError {
	names := make([]string, 0, len(f))
	for name := range f {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if !slices.Contains(known, name) {
			return invalidArg("unknown field " + quoteShort(name) + "; the fields are " + strings.Join(known, ", ")).at(name)
		}
	}
	return nil
}

func (f fields) string(name string) (*string, *apiError) {
	raw, ok := f[name]
	if !ok {
		return nil, nil
	}
	var s string
	if !bytes.HasPrefix(raw, []byte(`"`)) || json.Unmarshal(raw, &s) != nil {
		return nil, invalidArg(name + " must be a string").at(name)
	}
	return &s, nil
}

// roleID reads a role ID: a string of 24 hex digits.
func (f fields) roleID() (*string, *apiError) {
	s, e := f.string("role_id")
	if s == nil || e != nil {
		return s, e
	}
	id, ok := parseObjectID(*s)
	if !ok {
		return nil, invalidArg("role_id must be a role ID: 24 hexadecimal characters").at("role_id")
	}
	return &id, nil
}

// ips reads an array of strings or null; null reads as an empty list.
// The count is checked before the items are decoded.
func (f fields) ips() (*[]string, *apiError) {
	raw, ok := f["ips"]
	if !ok {
		return nil, nil
	}
	list := []string{}
	if string(raw) == "null" {
		return &list, nil
	}
	bad := invalidArg("ips must be an array of strings (IP addresses or CIDR blocks) or null").at("ips")
	var items []json.RawMessage
	if !bytes.HasPrefix(raw, []byte("[")) || json.Unmarshal(raw, &items) != nil {
		return nil, bad
	}
	if len(items) > keystore.MaxAllowedIPs {
		return nil, invalidArg("ips: at most " + strconv.Itoa(keystore.MaxAllowedIPs) + " addresses").at("ips")
	}
	for _, item := range items {
		// json.Unmarshal would turn null into "" instead of failing.
		var s string
		if !bytes.HasPrefix(item, []byte(`"`)) || json.Unmarshal(item, &s) != nil {
			return nil, bad
		}
		list = append(list, s)
	}
	return &list, nil
}

// emptyArray tells whether the member was sent as an empty array, after
// its value has been read successfully.
func (f fields) emptyArray(name string) bool {
	raw := bytes.TrimSpace(f[name])
	return len(raw) > 1 && raw[0] == '[' && len(bytes.TrimSpace(raw[1:len(raw)-1])) == 0
}

func parseCreate(f fields) (createRequest, *apiError) {
	if e := f.only("name", "role_id", "ips"); e != nil {
		return createRequest{}, e
	}
	name, e := f.string("name")
	if e != nil {
		return createRequest{}, e
	}
	roleID, e := f.roleID()
	if e != nil {
		return createRequest{}, e
	}
	ips, e := f.ips()
	switch {
	case e != nil:
		return createRequest{}, e
	case name == nil:
		return createRequest{}, missingArg("name")
	case *name == "":
		return createRequest{}, invalidArg("name must not be empty").at("name")
	case roleID == nil:
		return createRequest{}, missingArg("role_id")
	}
	req := createRequest{name: *name, roleID: *roleID, emptyIPs: f.emptyArray("ips")}
	if ips != nil && len(*ips) > 0 {
		req.ips = *ips
	}
	return req, nil
}

func parseUpdate(f fields) (updateRequest, *apiError) {
	if e := f.only("name", "role_id", "ips"); e != nil {
		return updateRequest{}, e
	}
	name, e := f.string("name")
	if e != nil {
		return updateRequest{}, e
	}
	roleID, e := f.roleID()
	if e != nil {
		return updateRequest{}, e
	}
	ips, e := f.ips()
	if e != nil {
		return updateRequest{}, e
	}
	return updateRequest{name: name, roleID: roleID, ips: ips, emptyIPs: f.emptyArray("ips")}, nil
}
