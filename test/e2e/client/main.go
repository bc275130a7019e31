// Command e2e-client is the e2e suite's test client, run as a pod (a small
// static image, no shell) so that requests really go through Services,
// kube-proxy and the pod network. It reads a plan (JSON, env PLAN) of HTTP
// requests, runs them in order, checks each status, and prints one result
// line per request and a last line "RESULT <json>"; it exits 1 when any
// request got an unexpected status.
//
// A request may capture fields of its JSON answer (`capture`: variable →
// dotted path) for later requests to use as ${VAR}, send the pod's
// ServiceAccount token (`bearerFile`), and repeat for a duration
// (`repeatFor`), counting every answer that differs from `expect`: the
// looping client of the failover, disruption and upgrade scenarios.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/apikey-operator/apikey-operator/test/e2e/plan"
)

type (
	Request = plan.Request
	Plan    = plan.Plan
	Result  = plan.Result
)

func main() {
	var p Plan
	if err := json.Unmarshal([]byte(os.Getenv("PLAN")), &p); err != nil {
		fmt.Println("RESULT", `{"error":"PLAN is not a plan"}`, err)
		os.Exit(2)
	}
	client, err := newClient(p)
	if err != nil {
		fmt.Println("RESULT", `{"error":"bad CA"}`)
		os.Exit(2)
	}
	vars := map[string]string{}
	var results []Result
	failed := false
	for _, r := range p.Requests {
		res := runRequest(client, r, vars)
		line, _ := json.Marshal(res)
		fmt.Println(string(line))
		results = append(results, res)
		failed = failed || res.Failed > 0 || res.OK == 0
	}
	line, _ := json.Marshal(results)
	fmt.Println("RESULT", string(line))
	if failed {
		os.Exit(1)
	}
}

func newClient(p Plan) (*http.Client, error) {
	tlsConfig := &tls.Config{ServerName: p.ServerName, MinVersion: tls.VersionTLS12}
	if p.CA != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(p.CA)) {
			return nil, fmt.Errorf("no certificate in CA")
		}
		tlsConfig.RootCAs = pool
	}
	// A new connection per request: each one goes through kube-proxy's
	// rules afresh, so a dead endpoint shows up as a failure.
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig, DisableKeepAlives: true}}, nil
}

func expand(s string, vars map[string]string) string {
	for k, v := range vars {
		s = strings.ReplaceAll(s, "${"+k+"}", v)
	}
	return s
}

func runRequest(c *http.Client, r Request, vars map[string]string) Result {
	res := Result{Name: r.Name}
	if r.RepeatFor == "" {
		status, body, err := do(c, r, vars)
		res.Status, res.Body = status, truncate(body)
		if err != nil || !matches(r.Expect, status) {
			res.Failed, res.Errors = 1, []string{describe(status, err)}
			return res
		}
		res.OK = 1
		var fields map[string]any
		if len(r.Capture) > 0 && json.Unmarshal([]byte(body), &fields) == nil {
			for v, path := range r.Capture {
				if s, ok := lookup(fields, path); ok {
					vars[v] = s
				}
			}
		}
		return res
	}
	d, err := time.ParseDuration(r.RepeatFor)
	if err != nil {
		res.Failed, res.Errors = 1, []string{"bad repeatFor"}
		return res
	}
	// Warm-up: wait (bounded) for the first good answer, so a Service whose
	// rules kube-proxy has not written yet does not count as a failure.
	warm := time.Now().Add(time.Minute)
	for time.Now().Before(warm) {
		if status, _, err := do(c, r, vars); err == nil && matches(r.Expect, status) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		status, _, err := do(c, r, vars)
		res.Status = status
		if err == nil && matches(r.Expect, status) {
			res.OK++
		} else {
			res.Failed++
			if len(res.Errors) < 10 {
				res.Errors = append(res.Errors, time.Now().Format("15:04:05.000")+" "+describe(status, err))
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return res
}

func do(c *http.Client, r Request, vars map[string]string) (int, string, error) {
	req, err := http.NewRequest(r.Method, expand(r.URL, vars), bytes.NewBufferString(expand(r.Body, vars)))
	if err != nil {
		return 0, "", err
	}
	for k, v := range r.Headers {
		req.Header.Set(k, expand(v, vars))
	}
	if r.Body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.BearerFile != "" {
		// Read every time: kubelet rotates projected tokens.
		tok, err := os.ReadFile(r.BearerFile)
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(body), nil
}

func matches(expect, status int) bool {
	if expect == 0 {
		return status == http.StatusUnauthorized || status == http.StatusForbidden
	}
	return status == expect
}

// lookup reads a string at a dotted path ("data.id") of a JSON object.
func lookup(obj map[string]any, path string) (string, bool) {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := obj[p].(map[string]any)
		if !ok {
			return "", false
		}
		obj = next
	}
	s, ok := obj[parts[len(parts)-1]].(string)
	return s, ok
}

func describe(status int, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("status %d", status)
}

func truncate(s string) string {
	if len(s) > 2000 {
		return s[:2000]
	}
	return s
}
