package hub

import (
	"testing"
)

func TestParseObject(t *testing.T) {
	ok := []string{
		`{}`, ` { } `, "{\n\"name\" :\t\"x\" }\n", `{"name":"a","role_id":"b"}`,
		`{"ips":[ "1.2.3.4" , "::1" ]}`, `{"a":{"a":1,"a":2}}`, // nested duplicates are a type error later, not a syntax error
	}
	for _, body := range ok {
		if _, e := parseObject([]byte(body)); e != nil {
			t.Errorf("%q: %v", body, e)
		}
	}
	bad := []string{``, ` `, `{`, `}`, `{"a"}`, `{"a":}`, `{"a":1,}`, `{a:1}`, `{"a":1}{}`, `{"a":1}]`, `[]`, `1`, `"s"`, `null`, `true`, `{"a":1,"a":1}`, "\xef\xbb\xbf{}"}
	for _, body := range bad {
		if _, e := parseObject([]byte(body)); e == nil || e.Code != codeSyntax {
			t.Errorf("%q: %v", body, e)
		}
	}
}

func TestFieldsTrimmed(t *testing.T) {
	f, e := parseObject([]byte(`{"name" :  "x" , "ips" :  null , "role_id":  "ABCDEF0123456789abcdef01"  }`))
	if e != nil {
		t.Fatal(e)
	}
	req, e := parseUpdate(f)
	if e != nil || *req.name != "x" || req.ips == nil || len(*req.ips) != 0 || *req.roleID != "abcdef0123456789abcdef01" {
		t.Errorf("%+v %v", req, e)
	}
}

func TestContentType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json": true, "Application/JSON": true, "application/json; charset=utf-8": true,
		"application/json;charset=UTF-8": true, "application/json; charset=latin1": false, "": false,
		"text/json": false, "application/problem+json": false, "application/jsonx": false,
	} {
		if got := checkContentType(ct) == nil; got != want {
			t.Errorf("%q: %v", ct, got)
		}
	}
}
