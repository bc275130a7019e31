package hub

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/keystore"
)

var sampleKeys = []*keystore.Key{
	{ID: "b", Name: "Beta", RoleID: "r1", State: keysv1.ReasonIssued},
	{ID: "a", Name: "alpha", State: keystore.StatePending},
	{ID: "c", Name: "", RoleID: "r2", State: "Other"},
}

// checkQueryError: a bad query is a 400 or a 422 with a known code.
func checkQueryError(t *testing.T, e *apiError) {
	t.Helper()
	if (e.Status != http.StatusBadRequest && e.Status != http.StatusUnprocessableEntity) || titles[e.Code] == "" {
		t.Fatalf("bad query answered %d %s", e.Status, e.Code)
	}
}

func FuzzListQuery(f *testing.F) {
	for _, s := range []string{
		"", "sort=-id", "sort=name,-created&sort=state", "filter[search]=a&filter[state]=live,new",
		"filter[role_id]=651586fca6078e98982dbd90", "page[size]=20&page[number]=2", "include=roles",
		"page[number]=99999999999", "sort=%zz", "filter[a][b]=c", "a=1;b=2", "sort=-", "page[size]=+1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, e := parseListQuery(raw)
		if e != nil {
			checkQueryError(t, e)
			return
		}
		o := q.opts
		if o.Limit < 1 || o.Limit > MaxPageSize || o.Offset < 0 || o.Offset > (MaxPageNumber-1)*MaxPageSize || o.Offset%o.Limit != 0 {
			t.Fatalf("options out of bounds: %+v", o)
		}
		for _, a := range sampleKeys {
			if o.Match != nil {
				o.Match(a)
			}
			for _, b := range sampleKeys {
				if o.Less != nil && o.Less(a, b) && o.Less(b, a) {
					t.Fatalf("Less is not a strict order for %s, %s", a.ID, b.ID)
				}
			}
		}
		if _, e := parseGetQuery(raw); e != nil {
			checkQueryError(t, e)
		}
	})
}

func FuzzParseObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"name":"a"}`, `{"a":1,"a":2}`, `[`, `{"ips":[null]}`, `{"name":"\ud800"}`, `{} {}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		fs, e := parseObject(body)
		if e != nil {
			if e.Status != http.StatusBadRequest || e.Code != codeSyntax {
				t.Fatalf("parse error answered %d %s", e.Status, e.Code)
			}
			return
		}
		// Whatever parses is valid JSON: the parser is no more lenient
		// than encoding/json.
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		for _, parse := range []func(fields) *apiError{
			func(f fields) *apiError { _, e := parseCreate(f); return e },
			func(f fields) *apiError { _, e := parseUpdate(f); return e },
		} {
			if e := parse(fs); e != nil && e.Status != http.StatusUnprocessableEntity {
				t.Fatalf("field error answered %d %s", e.Status, e.Code)
			}
		}
	})
}

// FuzzHandler sends arbitrary bodies, content types and queries through
// the whole handler: never a panic or a 5xx, always the dialect's shape,
// never a hash.
func FuzzHandler(f *testing.F) {
	f.Add(uint8(0), "application/json", `{"name":"k","role_id":"ROLE","ips":["10.0.0.1"]}`, "")
	f.Add(uint8(1), "application/json", `{"ips":null}`, "")
	f.Add(uint8(1), "application/json; charset=utf-8", `{"name":"k2","role_id":"ROLE"}`, "")
	f.Add(uint8(2), "", "", "sort=-created&filter[search]=k&page[size]=1&include=roles")
	f.Add(uint8(3), "", "", "include=roles")
	f.Add(uint8(4), "text/plain", "x", "")
	f.Add(uint8(0), "application/json", `{"name":"k","name":"j"}`, "")
	fx := newFixture(f)
	existing := fx.createKey(f, managerA, hubA, "existing", fx.manage.ID, "")["id"].(string)
	f.Fuzz(func(t *testing.T, op uint8, contentType, body, query string) {
		c := call{as: managerA, body: strings.ReplaceAll(body, "ROLE", fx.manage.ID), contentType: contentType}
		if contentType == "" {
			c.contentType = "-"
		}
		switch op % 5 {
		case 0:
			c.method, c.path = "POST", BasePath
		case 1:
			c.method, c.path = "PATCH", BasePath+"/"+existing
		case 2:
			c.method, c.path = "GET", BasePath
		case 3:
			c.method, c.path = "GET", BasePath+"/"+existing
		case 4:
			c.method, c.path = "DELETE", BasePath+"/"+url.PathEscape(body)
		}
		c.query = query
		res := fx.do(t, c)
		if res.status >= 500 {
			t.Fatalf("%s %s %q: %d %s", c.method, c.path, body, res.status, res.raw)
		}
		if res.status >= 400 {
			checkErrorEnvelope(t, res.status, res.body, res.raw)
		}
		if strings.Contains(res.raw, "sha256") {
			t.Fatalf("hash in answer: %s", res.raw)
		}
	})
}
