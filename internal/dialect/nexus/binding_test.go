package nexus

import (
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// Issue 13, point 4: the body binds as the vendor's ASP.NET server binds
// it. Member names match ignoring case, members the request does not have
// (a response echoed back) are ignored, and expiresAt reads every form
// System.Text.Json reads.
func TestCreateBindsAsASPNET(t *testing.T) {
	h := New(newStore())
	w := do(t, h, req{method: "POST", path: BasePath, caller: star, body: `{
		"Id": "ops@example.com", "ExpiresAt": "2030-01-31", "DESCRIPTION": "echoed",
		"userId": "someone-else", "created": "2001-01-01T00:00:00Z", "modified": null,
		"createdBy": "x", "modifiedBy": 7, "extra": {"nested": [1, 2]}}`}, http.StatusCreated)
	k := decodeKey(t, w.Body)
	if *k.ID != "ops@example.com" || k.ExpiresAt != "2030-01-31T00:00:00Z" || *k.Description != "echoed" {
		t.Errorf("bound %+v", k)
	}
	if *k.UserID != "apikey:tenant-a/star" || k.Created == "2001-01-01T00:00:00Z" {
		t.Errorf("response fields in the request must be ignored: %+v", k)
	}
	if loc := w.Header().Get("Location"); loc != BasePath+"/ops@example.com" {
		t.Errorf("Location %q", loc)
	}
}

// Issue 13, point 6: ids as people write them, addressable by their
// URL-encoded form.
func TestIDsAsPeopleWriteThem(t *testing.T) {
	h := New(newStore())
	for _, id := range []string{"ops@example.com", "tenant:42", "CI Deploy (prod)", "a/b", "Déploiement", "build #42?x=1"} {
		w := do(t, h, req{method: "POST", path: BasePath, caller: star, body: `{"id":` + jsonString(id) + `}`}, http.StatusCreated)
		if k := decodeKey(t, w.Body); *k.ID != id {
			t.Errorf("created %q, answered %q", id, *k.ID)
		}
		loc := w.Header().Get("Location")
		path := BasePath + "/" + url.PathEscape(id)
		if loc != path {
			t.Errorf("Location %q, want %q", loc, path)
		}
		if k := decodeKey(t, do(t, h, req{method: "GET", path: path, caller: star}, http.StatusOK).Body); *k.ID != id {
			t.Errorf("GET %s: id %q", path, *k.ID)
		}
		do(t, h, req{method: "DELETE", path: path, caller: star}, http.StatusNoContent)
		checkProblem(t, do(t, h, req{method: "GET", path: path, caller: star}, http.StatusNotFound), "")
	}
}

func TestParseDateTime(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v.UTC()
	}
	for in, want := range map[string]time.Time{
		"2030-01-31":                        utc("2030-01-31T00:00:00Z"),
		"2030-01-31T10:20":                  utc("2030-01-31T10:20:00Z"),
		"2030-01-31T10:20:30":               utc("2030-01-31T10:20:30Z"),
		"2030-01-31T10:20:30Z":              utc("2030-01-31T10:20:30Z"),
		"2030-01-31T10:20:30.1234567Z":      utc("2030-01-31T10:20:30.1234567Z"),
		"2030-01-31T10:20:30.5":             utc("2030-01-31T10:20:30.5Z"),
		"2030-01-31T10:20:30+02:00":         utc("2030-01-31T08:20:30Z"),
		"2030-01-31T00:00:00.1234567-05:30": utc("2030-01-31T05:30:00.1234567Z"),
		"2028-02-29":                        utc("2028-02-29T00:00:00Z"),
	} {
		got, ok := parseDateTime(in)
		if !ok || !got.Equal(want) || got.Location() != time.UTC {
			t.Errorf("parseDateTime(%q) = %v, %v; want %v", in, got, ok, want)
		}
	}
	for _, in := range []string{
		"", "2030", "2030-01", "2030-1-31", "2030-13-01", "2030-02-30", "2029-02-29", "2030-01-31T",
		"2030-01-31T24:00:00Z", "2030-01-31T10:60:00Z", "2030-01-31T10:20:61Z", "2030-01-31T10:20:30.Z",
		"2030-01-31T10:20:30.12345678Z", "2030-01-31 10:20:30Z", "2030-01-31T10:20:30+2:00",
		"2030-01-31T10:20:30+15:00", "2030-01-31T10:20:30z", "tomorrow", "1735689600",
	} {
		if got, ok := parseDateTime(in); ok {
			t.Errorf("parseDateTime(%q) = %v, want a refusal", in, got)
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
