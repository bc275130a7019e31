// Package plan is what the e2e suite tells its test client (a pod running
// test/e2e/client) to do, and what the client answers: one definition for
// both sides of the JSON.
package plan

// Request is one step of a plan.
type Request struct {
	Name       string            `json:"name"`
	Method     string            `json:"method"`
	URL        string            `json:"url"`
	Headers    map[string]string `json:"headers,omitempty"`
	BearerFile string            `json:"bearerFile,omitempty"`
	Body       string            `json:"body,omitempty"`
	// Expect is the status wanted; 0 means refused: 401 or 403.
	Expect  int               `json:"expect"`
	Capture map[string]string `json:"capture,omitempty"`
	// RepeatFor repeats the request for this long (a Go duration), once
	// the first answer matched (waited for up to a minute).
	RepeatFor string `json:"repeatFor,omitempty"`
}

// Plan is what the client's PLAN environment variable holds.
type Plan struct {
	// CA (PEM) and ServerName verify HTTPS servers reached by ClusterIP
	// (there is no cluster DNS on the e2e node).
	CA         string    `json:"ca,omitempty"`
	ServerName string    `json:"serverName,omitempty"`
	Requests   []Request `json:"requests"`
}

// Result is printed per request, and all of them on the last line after
// "RESULT ".
type Result struct {
	Name   string   `json:"name"`
	Status int      `json:"status"`
	OK     int      `json:"ok"`
	Failed int      `json:"failed"`
	Errors []string `json:"errors,omitempty"`
	Body   string   `json:"body,omitempty"`
}
