package hubspec

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func mustLoad(t *testing.T) *Validator {
	t.Helper()
	v, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	return v
}

var jsonHeader = http.Header{"Content-Type": {"application/json"}}

const goodKey = `{"id":"651586fca6078e98982dbd90","hub_id":"hub-a","name":"CI Deploy (prod)",
	"creator":{"id":"000000000000000000000000","type":"platform"},"secret":"ak_x********",
	"role_id":"651586fca6078e98982dbd91","ips":[],
	"state":{"current":"live","changed":"2025-06-01T12:00:00Z"},
	"events":{"created":"2025-06-01T12:00:00Z","updated":"2025-06-01T12:00:00Z","deleted":"0001-01-01T00:00:00Z"}}`

const goodRole = `{"id":"651586fca6078e98982dbd91","name":"deployers","root":false,"default":null,"rank":0,
	"identifier":"deployers","creator":{"id":"000000000000000000000000","type":"platform"},
	"capabilities":{"all":false,"specific":["api-keys-manage"]},"extra":{"permissions":"invoices:read"},
	"hub_id":"hub-a","state":{"current":"live","changed":"2025-06-01T12:00:00Z"},
	"events":{"created":"2025-06-01T12:00:00Z","updated":"2025-06-01T12:00:00Z","deleted":"0001-01-01T00:00:00Z"}}`

// The validator accepts good answers and refuses bad ones: a required
// field removed, a wrong type, a value outside an enum. This is the proof
// that the suites' validation can fail.
func TestValidate(t *testing.T) {
	v := mustLoad(t)
	good := []struct {
		method, target string
		status         int
		body           string
	}{
		{"GET", "/v1/hubs/current/api-keys/651586fca6078e98982dbd90", 200, `{"data":` + goodKey + `}`},
		{"GET", "/v1/hubs/current/api-keys/651586fca6078e98982dbd90?include=roles", 200, `{"data":` + goodKey + `,"includes":{"roles":{"651586fca6078e98982dbd91":` + goodRole + `}}}`},
		{"GET", "/v1/hubs/current/api-keys", 200, `{"data":[` + goodKey + `]}`},
		{"POST", "/v1/hubs/current/api-keys", 201, `{"data":` + goodKey + `}`},
		{"GET", "/v1/hubs/current/roles", 200, `{"data":[` + goodRole + `]}`},
		{"GET", "/v1/hubs/current/roles/651586fca6078e98982dbd91", 200, `{"data":` + goodRole + `}`},
		{"GET", "/v1/hubs/current/roles/x", 404, `{"error":{"status":404,"code":"404.hub.role","title":"Role Not Found"},"data":null}`},
		{"GET", "/v1/hubs/other", 404, `{"error":{"status":404,"code":"404.uri","title":"URI Not Found"},"data":null}`},
		{"GET", "/v1/hubs/current/api-keys", 429, `{"error":{"status":429,"code":"429.rate-limiting","title":"Too Many Requests"},"data":null}`},
	}
	for _, c := range good {
		if err := v.Validate(c.method, c.target, c.status, jsonHeader, []byte(c.body)); err != nil {
			t.Errorf("%s %s %d: %v", c.method, c.target, c.status, err)
		}
	}

	// Each mutation of a good answer must be refused.
	key := func(mutate func(m map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(goodKey), &m); err != nil {
			t.Fatal(err)
		}
		mutate(m)
		b, _ := json.Marshal(map[string]any{"data": m})
		return string(b)
	}
	role := func(mutate func(m map[string]any)) string {
		var m map[string]any
		if err := json.Unmarshal([]byte(goodRole), &m); err != nil {
			t.Fatal(err)
		}
		mutate(m)
		b, _ := json.Marshal(map[string]any{"data": []any{m}})
		return string(b)
	}
	bad := []struct {
		what, method, target string
		status               int
		body                 string
	}{
		{"ApiKey without role_id", "GET", "/v1/hubs/current/api-keys/651586fca6078e98982dbd90", 200, key(func(m map[string]any) { delete(m, "role_id") })},
		{"ApiKey without secret", "POST", "/v1/hubs/current/api-keys", 201, key(func(m map[string]any) { delete(m, "secret") })},
		{"ApiKey with an empty role_id", "GET", "/v1/hubs/current/api-keys/651586fca6078e98982dbd90", 200, key(func(m map[string]any) { m["role_id"] = "" })},
		{"ApiKey with a state outside the enum", "GET", "/v1/hubs/current/api-keys/651586fca6078e98982dbd90", 200, key(func(m map[string]any) { m["state"].(map[string]any)["current"] = "gone" })},
		{"ApiKey with ips a string", "GET", "/v1/hubs/current/api-keys/651586fca6078e98982dbd90", 200, key(func(m map[string]any) { m["ips"] = "10.0.0.1" })},
		{"ApiKey with a bad date", "GET", "/v1/hubs/current/api-keys/651586fca6078e98982dbd90", 200, key(func(m map[string]any) { m["events"].(map[string]any)["created"] = "yesterday" })},
		{"Role without identifier", "GET", "/v1/hubs/current/roles", 200, role(func(m map[string]any) { delete(m, "identifier") })},
		{"Role with a permission in specific", "GET", "/v1/hubs/current/roles", 200, role(func(m map[string]any) {
			m["capabilities"].(map[string]any)["specific"] = []any{"invoices:read"}
		})},
		{"Role with a number in extra", "GET", "/v1/hubs/current/roles", 200, role(func(m map[string]any) { m["extra"] = map[string]any{"n": 1} })},
		{"error without title", "GET", "/v1/hubs/current/roles", 404, `{"error":{"status":404,"code":"404.hub.role"},"data":null}`},
		{"error with a code outside the enum", "GET", "/v1/hubs/current/api-keys", 404, `{"error":{"status":405,"code":"405.method-not-allowed","title":"x"},"data":null}`},
		{"error with a status outside the enum", "GET", "/v1/hubs/current/api-keys", 413, `{"error":{"status":413,"code":"422.max-exceeded","title":"x"},"data":null}`},
		{"error with data not null", "GET", "/v1/hubs/other", 404, `{"error":{"status":404,"code":"404.uri","title":"x"},"data":{}}`},
		{"list without data", "GET", "/v1/hubs/current/api-keys", 200, `{}`},
		{"includes with a bad role", "GET", "/v1/hubs/current/api-keys?include=roles", 200, `{"data":[],"includes":{"roles":{"x":{"id":"x"}}}}`},
		{"not JSON", "GET", "/v1/hubs/current/roles", 200, `{"data":[`},
	}
	for _, c := range bad {
		err := v.Validate(c.method, c.target, c.status, jsonHeader, []byte(c.body))
		if err == nil {
			t.Errorf("%s: accepted", c.what)
		} else if testing.Verbose() {
			t.Logf("%s: %s", c.what, strings.SplitN(err.Error(), "\n", 2)[0])
		}
	}
}

func TestCoverage(t *testing.T) {
	v := mustLoad(t)
	want := []string{"createApiKey", "deleteAPIKey", "getAPIKey", "getApiKeys", "getRole", "getRoles", "updateAPIKey"}
	if got := v.Operations(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("operations %v, want %v", got, want)
	}
	if len(v.Uncovered()) != 2*len(want) {
		t.Errorf("uncovered %v", v.Uncovered())
	}
	_ = v.Validate("GET", "/v1/hubs/current/roles", 200, jsonHeader, []byte(`{"data":[]}`))
	_ = v.Validate("GET", "/v1/hubs/current/roles", 403, jsonHeader, []byte(`{"error":{"status":403,"code":"403.permissions","title":"x"},"data":null}`))
	for _, u := range v.Uncovered() {
		if strings.HasPrefix(u, "getRoles:") {
			t.Errorf("still uncovered: %s", u)
		}
	}
}
