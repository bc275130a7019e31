package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/apikey-operator/apikey-operator/internal/testkit"
)

// TestMakeRun runs `make run`'s program as a person would: it waits for the
// sample keys to be Ready, checks what a person can see, presses Ctrl-C,
// and checks that no process and no port is left behind.
func TestMakeRun(t *testing.T) {
	assets := testkit.ControlPlane(t)
	bin := t.TempDir()
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kubectl"} {
		if name == "kube-controller-manager" && os.Getenv("LOCALRUN_STUB_CONTROLLER_MANAGER") != "" {
			stubControllerManager(t, filepath.Join(bin, name))
			continue
		}
		if err := os.Symlink(filepath.Join(assets, name), filepath.Join(bin, name)); err != nil {
			t.Fatal(err)
		}
	}
	build(t, filepath.Join(bin, "apikey-operator"), "../..")
	build(t, filepath.Join(bin, "localrun"), ".")

	cmd := exec.Command(filepath.Join(bin, "localrun"), "--bin", bin, "--config", "../../config")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()

	seen := readUntil(t, out, "Press Ctrl-C to stop everything.", 3*time.Minute)
	for _, want := range []string{"billing-service   True", "ci-deployer       True", "make-run-admin    True", "export KUBECONFIG=" + filepath.Join(bin, "local", "kubeconfig"), "export BASE=https://localhost:8443", "kubectl apikey status billing-service"} {
		if !strings.Contains(seen, want) {
			t.Errorf("output lacks %q:\n%s", want, seen)
		}
	}
	kubectl := func(args ...string) string {
		full := append([]string{"--kubeconfig", filepath.Join(bin, "local", "kubeconfig")}, args...)
		b, err := exec.Command(filepath.Join(bin, "kubectl"), full...).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, b)
		}
		return string(b)
	}
	if got := kubectl("get", "secret", "ci-deployer", "-o", "jsonpath={.metadata.labels}"); !strings.Contains(got, "apikey-operator") {
		t.Errorf("the sample key's Secret is not labelled: %s", got)
	}
	if got := firstLine(kubectl("get", "ak")); strings.Join(strings.Fields(got), " ") != "NAME READY ENABLED PREFIX EXPIRES AGE" {
		t.Errorf("kubectl get ak columns: %q", got)
	}
	if got := firstLine(kubectl("get", "ak", "-o", "wide")); !strings.Contains(got, "REASON") || !strings.Contains(got, "ROLE") {
		t.Errorf("kubectl get ak -o wide columns: %q", got)
	}
	explained := kubectl("explain", "apikey.spec")
	for _, field := range []string{"name", "description", "roleRef", "permissions", "allowedIPs", "expiresAt", "enabled", "secretName", "rotation", "rateLimit"} {
		if !strings.Contains(explained, "  "+field+"\t") {
			t.Errorf("kubectl explain apikey.spec does not document %s:\n%s", field, explained)
		}
	}
	if !strings.Contains(explained, "spec.expiresAt is unset") && !strings.Contains(explained, "default lifetime") {
		t.Errorf("kubectl explain apikey.spec lacks the field descriptions:\n%s", explained)
	}
	checkPrintedExamples(t, kubectl)
	checkGarbageCollected(t, kubectl)

	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(out)
	if err := waitExit(cmd, 60*time.Second); err != nil {
		t.Fatalf("after Ctrl-C: %v\n%s", err, rest)
	}
	if !strings.Contains(string(rest), "nothing is left running") {
		t.Errorf("shutdown output:\n%s", rest)
	}
	if left := processesUnder(bin); len(left) > 0 {
		t.Errorf("processes left after Ctrl-C: %v", left)
	}
	for _, addr := range []string{":8080", ":8081", ":9443", ":8443", ":8090", ":9191"} {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("port %s still taken after Ctrl-C: %v", addr, err)
			continue
		}
		l.Close()
	}
}

// stubControllerManager puts a kube-controller-manager that runs and does
// nothing at path: with LOCALRUN_STUB_CONTROLLER_MANAGER=1 the test runs
// `make run` without a garbage collector, to show checkGarbageCollected
// fails then (a test that passes either way would prove nothing).
func stubControllerManager(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\nexec sleep 3600\n"), 0o755); err != nil {
		t.Fatal(err)
	}
}

// checkGarbageCollected deletes a key as a person would, with kubectl
// (which, unlike the REST dialects, leaves the Secret to its owner
// reference), and waits for kube-controller-manager's garbage collector
// to remove its Secret, as in a cluster. Without it the Secret stays.
func checkGarbageCollected(t *testing.T, kubectl func(...string) string) {
	t.Helper()
	kubectl("get", "secret", "billing-service")
	kubectl("delete", "ak", "billing-service")
	deadline := time.Now().Add(90 * time.Second)
	for {
		if got := kubectl("get", "secret", "--ignore-not-found", "billing-service", "-o", "name"); strings.TrimSpace(got) == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("the Secret of a key deleted with kubectl is still there after 90s: no garbage collector")
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkPrintedExamples does what the printed instructions say: create a
// key through a REST dialect with the admin key, verify it as a gateway
// would, and find the aggregated API.
func checkPrintedExamples(t *testing.T, kubectl func(...string) string) {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(kubectl("get", "secret", "make-run-admin", "-o", "jsonpath={.data.api-key}"))
	if err != nil {
		t.Fatal(err)
	}
	admin := string(raw)
	insecure := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} // the curl -k of the instructions
	req, _ := http.NewRequest("POST", "https://localhost:8443/api/default/admin/apiKeys", strings.NewReader(`{"name":"My_First_Key","permissions":["invoices:read"]}`))
	req.Header.Set("X-API-KEY", admin)
	req.Header.Set("Content-Type", "application/json")
	resp, err := insecure.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"token":"ak_`) {
		t.Errorf("the printed curl that creates a key: %d %s", resp.StatusCode, body)
	}

	req, _ = http.NewRequest("GET", "http://localhost:8090/v1/auth?namespace=default&permission=invoices:read", nil)
	req.Header.Set("Authorization", "Bearer "+admin)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("X-ApiKey-Name") != "make-run-admin" {
		t.Errorf("forward-auth with the admin key: %d %v", resp.StatusCode, resp.Header)
	}
	if got := kubectl("api-resources", "--api-group=access.apikey-operator.io"); !strings.Contains(got, "apikeyreviews") {
		t.Errorf("kubectl api-resources does not list apikeyreviews:\n%s", got)
	}
	// The printed metrics curl: plain HTTP, on loopback only.
	resp, err = http.Get("http://localhost:8080/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "\napikey_") {
		t.Errorf("the printed metrics curl: %d %.300s", resp.StatusCode, body)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func build(t *testing.T, out, pkg string) {
	t.Helper()
	b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
}

// readUntil reads lines until one contains marker, and returns them all.
func readUntil(t *testing.T, r io.Reader, marker string, timeout time.Duration) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	lines := make(chan string)
	go func() {
		s := bufio.NewScanner(r)
		for s.Scan() {
			lines <- s.Text()
			if strings.Contains(s.Text(), marker) {
				close(lines)
				return
			}
		}
		close(lines)
	}()
	var seen strings.Builder
	for {
		select {
		case line, ok := <-lines:
			if !ok {
				if !strings.Contains(seen.String(), marker) {
					t.Fatalf("output ended before %q:\n%s", marker, seen.String())
				}
				return seen.String()
			}
			seen.WriteString(line + "\n")
		case <-ctx.Done():
			t.Fatalf("no %q within %s:\n%s", marker, timeout, seen.String())
		}
	}
}

func waitExit(cmd *exec.Cmd, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return context.DeadlineExceeded
	}
}

// processesUnder lists running processes whose command line names dir.
func processesUnder(dir string) []string {
	entries, _ := os.ReadDir("/proc")
	var found []string
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if c := strings.ReplaceAll(string(cmdline), "\x00", " "); strings.Contains(c, dir) {
			found = append(found, e.Name()+": "+c)
		}
	}
	return found
}
