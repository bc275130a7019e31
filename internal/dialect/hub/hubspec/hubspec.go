// Package hubspec checks answers of the hub dialect against the
// product's own OpenAPI files (copied unchanged into openapi/, with a
// root document and the roles paths of our own) with a real OpenAPI 3.1
// validator, kin-openapi, rather than hand-written field checks: a test
// that records hub answers hands each to Validate. It also counts which
// operations it saw succeed and fail, so a suite can prove it covered
// them all.
//
// Two amendments are made to the product's Error.yml after loading, both
// fixing the file against its evident intent, and both stricter or as
// strict: its `required` is the single string "status, code, title"
// (which no answer has, so every error would fail), read as the three
// names; and its status enum gets 429, which its own code enum implies
// with 429.rate-limiting.
package hubspec

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"
)

//go:embed openapi
var files embed.FS

// objectID is the product's ID format: 24 hex digits (ID.yml says so in
// words; the validator enforces it).
const objectID = "^[0-9a-f]{24}$"

// Validator checks answers and counts what it saw. It is safe for
// concurrent use.
type Validator struct {
	doc    *openapi3.T
	router routers.Router

	mu   sync.Mutex
	seen map[string]map[int]bool // operationId -> statuses
}

// Load reads the embedded documents.
func Load() (*Validator, error) {
	openapi3.DefineStringFormatValidator("objectid", openapi3.NewRegexpFormatValidator(objectID))
	loader := openapi3.NewLoader()
	loader.IsExternalRefsAllowed = true
	loader.ReadFromURIFunc = func(_ *openapi3.Loader, location *url.URL) ([]byte, error) {
		return fs.ReadFile(files, path.Join("openapi", path.Clean("/" + location.Path)[1:]))
	}
	root, err := fs.ReadFile(files, "openapi/root.yml")
	if err != nil {
		return nil, err
	}
	doc, err := loader.LoadFromDataWithPath(root, &url.URL{Path: "root.yml"})
	if err != nil {
		return nil, fmt.Errorf("load the hub OpenAPI files: %w", err)
	}
	if err := amendError(doc); err != nil {
		return nil, err
	}
	router, err := legacy.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("route the hub OpenAPI document: %w", err)
	}
	return &Validator{doc: doc, router: router, seen: map[string]map[int]bool{}}, nil
}

// amendError fixes Error.yml as the package comment says, in every copy
// the loader made of it (one per path that refers to it).
func amendError(doc *openapi3.T) error {
	amended := 0
	seen := map[*openapi3.Schema]bool{}
	var visit func(ref *openapi3.SchemaRef)
	visit = func(ref *openapi3.SchemaRef) {
		if ref == nil || ref.Value == nil || seen[ref.Value] {
			return
		}
		s := ref.Value
		seen[s] = true
		if slices.Equal(s.Required, []string{"status, code, title"}) {
			s.Required = []string{"status", "code", "title"}
			if st := s.Properties["status"]; st != nil && st.Value != nil && !slices.Contains(st.Value.Enum, any(429)) {
				st.Value.Enum = append(st.Value.Enum, 429)
			}
			amended++
		}
		for _, p := range s.Properties {
			visit(p)
		}
		for _, list := range [][]*openapi3.SchemaRef{s.AllOf, s.AnyOf, s.OneOf} {
			for _, sub := range list {
				visit(sub)
			}
		}
		visit(s.Items)
		visit(s.AdditionalProperties.Schema)
	}
	for _, ref := range doc.Components.Schemas {
		visit(ref)
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, resp := range op.Responses.Map() {
				if resp.Value == nil {
					continue
				}
				for _, media := range resp.Value.Content {
					visit(media.Schema)
				}
			}
		}
	}
	if amended == 0 {
		return errors.New("Error.yml's required is no longer \"status, code, title\": check the amendment in package hubspec")
	}
	return nil
}

// Validate checks one answer to a request (method and target as sent:
// path and query). An answer to a path or method the document has no
// operation for must be an ErrorEnvelope, as the product's default
// response is.
func (v *Validator) Validate(method, target string, status int, header http.Header, body []byte) error {
	// Not url.Parse: a fuzzed query need not be a valid URL, and only the
	// path selects the operation.
	p, query, _ := strings.Cut(target, "?")
	req, err := http.NewRequest(method, "http://hub.invalid/", nil)
	if err != nil {
		return err
	}
	req.URL.Path, req.URL.RawQuery = p, query
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		// No operation: only an error can answer.
		v.count("(no operation)", status)
		return v.validateSchema("ErrorEnvelope", body)
	}
	v.count(route.Operation.OperationID, status)
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		return fmt.Errorf("%s %s → %d does not match the product's schema: %w", method, target, status, err)
	}
	// The list's schema does not name includes (only the get's does):
	// check them against the same ApiKeyIncludes.
	if route.Operation.OperationID == "getApiKeys" && status == http.StatusOK {
		var out struct {
			Includes json.RawMessage `json:"includes"`
		}
		if json.Unmarshal(body, &out) == nil && out.Includes != nil {
			if err := v.validateSchema("ApiKeyIncludes", out.Includes); err != nil {
				return fmt.Errorf("%s %s → includes: %w", method, target, err)
			}
		}
	}
	return nil
}

func (v *Validator) validateSchema(name string, body []byte) error {
	var value any
	if err := json.Unmarshal(body, &value); err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return v.doc.Components.Schemas[name].Value.VisitJSON(value, openapi3.EnableJSONSchema2020(), openapi3.MultiErrors())
}

func (v *Validator) count(op string, status int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen[op] == nil {
		v.seen[op] = map[int]bool{}
	}
	v.seen[op][status] = true
}

// Operations are the operationIds of the document, sorted.
func (v *Validator) Operations() []string {
	var ops []string
	for _, item := range v.doc.Paths.Map() {
		for _, op := range item.Operations() {
			ops = append(ops, op.OperationID)
		}
	}
	sort.Strings(ops)
	return ops
}

// Uncovered lists the operations not yet seen both succeeding (2xx) and
// failing (4xx or 5xx), as "<operationId>: no success" or "...: no error".
func (v *Validator) Uncovered() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for _, op := range v.Operations() {
		var ok, failed bool
		for st := range v.seen[op] {
			ok = ok || st < 300
			failed = failed || st >= 400
		}
		if !ok {
			out = append(out, op+": no success")
		}
		if !failed {
			out = append(out, op+": no error")
		}
	}
	return out
}

// Seen summarises what was validated, for a report: operationId and the
// statuses seen.
func (v *Validator) Seen() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var lines []string
	for op, statuses := range v.seen {
		var sts []int
		for st := range statuses {
			sts = append(sts, st)
		}
		slices.Sort(sts)
		lines = append(lines, fmt.Sprintf("%s %v", op, sts))
	}
	sort.Strings(lines)
	return strings.Join(lines, "; ")
}
