package verify_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/template"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	. "github.com/apikey-operator/apikey-operator/internal/verify"
)

// Real gateways from Debian's packages in front of a small backend, each
// asking the verify server through its forward-auth mechanism. Clients
// connect from 127.0.0.2 (allowed) and 127.0.0.3 (not allowed); the
// gateways reach the verify server from 127.0.0.1, its trusted proxy.

const installHint = "NGINX and Caddy come from Debian's packages: run hack/gateways-install.sh as root (apt-get install -y nginx-light caddy)"

var _ = Describe("gateways", Ordered, func() {
	var backendAddr string
	BeforeAll(func() {
		ensureGateways()
		backendAddr = startBackend()
	})

	for _, gw := range []struct {
		name  string
		start func(dir, listen, backend, ns string)
	}{
		{"NGINX auth_request", startNGINX},
		{"Caddy forward_auth", startCaddy},
	} {
		Context(gw.name, Ordered, func() {
			var base, ns string
			var ctx = context.Background()
			BeforeAll(func() {
				// The gateway's configuration names its tenant: keys of
				// ns on /, and keys for the billing audience on /billing/.
				ns = newNamespace(ctx)
				listen := freeAddr()
				gw.start(GinkgoT().TempDir(), listen, backendAddr, ns)
				base = "http://" + listen
				waitListening(listen)
			})

			It("refuses a key from another namespace, even one granting everything (issue 11)", func() {
				other := newNamespace(ctx)
				_, tok := issue(ctx, other, "everything", func(k *keysv1.ApiKey) { k.Spec.Permissions = Perms("*") })
				eventuallyCode(tok, "127.0.0.2", "invoices:read").Should(Equal("Valid"), "valid in its own namespace")
				status, seen := get(base, "127.0.0.2", map[string]string{"Authorization": "Bearer " + tok})
				Expect(status).To(Equal(401), "another tenant's key passed the gateway")
				Expect(seen).To(BeNil(), "the backend was reached")

				status, _ = get(base, "127.0.0.2", map[string]string{"Authorization": "Bearer " + tok, AcceptNamespaceHeader: other})
				Expect(status).To(Equal(401), "a client's Accept header must not widen the gateway's namespace")
			})

			It("opens the billing audience only to keys made for it", func() {
				other := newNamespace(ctx)
				_, billing := issue(ctx, other, "billing", func(k *keysv1.ApiKey) {
					k.Spec.Permissions = Perms("invoices:read")
					k.Spec.Audiences = []keysv1.Audience{"billing"}
				})
				_, reports := issue(ctx, other, "reports", func(k *keysv1.ApiKey) {
					k.Spec.Permissions = Perms("*")
					k.Spec.Audiences = []keysv1.Audience{"reports"}
				})
				_, plain := issue(ctx, other, "plain", func(k *keysv1.ApiKey) { k.Spec.Permissions = Perms("*") })
				Eventually(func() string { return verifyIn(map[string]any{"audiences": []string{"billing"}}, billing, "") }).Should(Equal("Valid"))
				Eventually(func() string { return verifyIn(map[string]any{"audiences": []string{"reports"}}, reports, "") }).Should(Equal("Valid"))
				eventuallyCode(plain, "").Should(Equal("Valid"))

				status, seen := getPath(base, "/billing/invoices", "127.0.0.2", map[string]string{"Authorization": "Bearer " + billing})
				Expect(status).To(Equal(200))
				Expect(seen).To(HaveKeyWithValue(NamespaceHeader, other))
				status, _ = getPath(base, "/billing/invoices", "127.0.0.2", map[string]string{"Authorization": "Bearer " + reports})
				Expect(status).To(Equal(401), "a key for the reports API opened the billing API")
				status, _ = getPath(base, "/billing/invoices", "127.0.0.2", map[string]string{"Authorization": "Bearer " + plain})
				Expect(status).To(Equal(401), "a key without audiences opened an audience's API")
				status, _ = get(base, "127.0.0.2", map[string]string{"Authorization": "Bearer " + billing})
				Expect(status).To(Equal(401), "a key of another namespace opened the namespace's API")
			})

			It("lets a valid key through with the identity headers, from an allowed address only", func() {
				_, tok := issue(ctx, ns, "gateway", func(k *keysv1.ApiKey) {
					k.Spec.Permissions = Perms("invoices:read")
					k.Spec.AllowedIPs = IPs("127.0.0.2/32")
				})
				eventuallyCode(tok, "127.0.0.2", "invoices:read").Should(Equal("Valid"))

				status, seen := get(base, "127.0.0.2", map[string]string{"Authorization": "Bearer " + tok, NameHeader: "spoofed"})
				Expect(status).To(Equal(200))
				Expect(seen).To(HaveKeyWithValue(NamespaceHeader, ns))
				Expect(seen).To(HaveKeyWithValue(NameHeader, "gateway"))
				Expect(seen).To(HaveKeyWithValue(PermissionsHeader, "invoices:read"))

				status, _ = get(base, "127.0.0.2", map[string]string{APIKeyHeader: tok})
				Expect(status).To(Equal(200), "key in X-API-Key")

				status, seen = get(base, "127.0.0.3", map[string]string{"Authorization": "Bearer " + tok})
				Expect(status).To(Equal(403), "from a disallowed address")
				Expect(seen).To(BeNil(), "the backend was reached")

				status, _ = get(base, "127.0.0.3", map[string]string{"Authorization": "Bearer " + tok, "X-Forwarded-For": "127.0.0.2", "X-Real-IP": "127.0.0.2"})
				Expect(status).To(Equal(403), "a client's own X-Forwarded-For must not pass")
			})

			It("keeps the key and a client's identity headers from the backend, on every location (issue 15)", func() {
				_, tok := issue(ctx, ns, "hygiene", func(k *keysv1.ApiKey) { k.Spec.Permissions = Perms("invoices:read") })
				_, billing := issue(ctx, newNamespace(ctx), "hygiene-billing", func(k *keysv1.ApiKey) {
					k.Spec.Permissions = Perms("invoices:read")
					k.Spec.Audiences = []keysv1.Audience{"billing"}
				})
				eventuallyCode(tok, "127.0.0.2", "invoices:read").Should(Equal("Valid"))
				Eventually(func() string { return verifyIn(map[string]any{"audiences": []string{"billing"}}, billing, "") }).Should(Equal("Valid"))
				spoofed := map[string]string{NamespaceHeader: "spoofed", NameHeader: "spoofed", PermissionsHeader: "*"}
				for _, c := range []struct {
					path, tok, keyHeader string
				}{
					{"/invoices", tok, "Authorization"},
					{"/invoices", tok, APIKeyHeader},
					{"/billing/invoices", billing, "Authorization"},
					{"/billing/invoices", billing, APIKeyHeader},
				} {
					headers := map[string]string{}
					for k, v := range spoofed {
						headers[k] = v
					}
					if c.keyHeader == "Authorization" {
						headers["Authorization"] = "Bearer " + c.tok
					} else {
						headers[APIKeyHeader] = c.tok
					}
					status, seen := getPath(base, c.path, "127.0.0.2", headers)
					Expect(status).To(Equal(200), "%s with %s", c.path, c.keyHeader)
					Expect(seen).To(HaveKeyWithValue("Authorization", ""), "%s: the key reached the backend in Authorization", c.path)
					Expect(seen).To(HaveKeyWithValue(APIKeyHeader, ""), "%s: the key reached the backend in X-API-Key", c.path)
					for k := range spoofed {
						Expect(seen[k]).NotTo(Or(Equal("spoofed"), Equal("*")), "%s: the client's %s reached the backend", c.path, k)
					}
				}
			})

			It("answers 401 for a deleted key", func() {
				k, tok := issue(ctx, ns, "doomed", func(k *keysv1.ApiKey) { k.Spec.Permissions = Perms("invoices:*") })
				eventuallyCode(tok, "").Should(Equal("Valid"))
				Expect(statusOf(base, tok)).To(Equal(200))
				deleted := time.Now()
				Expect(k8s.Delete(ctx, k)).To(Succeed())
				Eventually(func() int { return statusOf(base, tok) }).WithTimeout(5 * time.Second).WithPolling(2 * time.Millisecond).Should(Equal(401))
				GinkgoWriter.Printf("%s: delete to first 401: %s (reported, not asserted)\n", gw.name, time.Since(deleted))
			})

			It("refuses a malformed key before the index", func() {
				_, tok := issue(ctx, ns, "typo")
				typo := FlipLast(tok)
				malformed, notFound := resultCount("Malformed"), resultCount("NotFound")
				Expect(statusOf(base, typo)).To(Equal(401))
				Expect(resultCount("Malformed")).To(Equal(malformed + 1))
				Expect(resultCount("NotFound")).To(Equal(notFound), "the index was consulted")
				Expect(statusOf(base, "")).To(Equal(401), "no key at all")
			})

			It("refuses a missing permission with 403", func() {
				_, tok := issue(ctx, ns, "no-invoices", func(k *keysv1.ApiKey) { k.Spec.Permissions = Perms("reports:read") })
				eventuallyCode(tok, "").Should(Equal("Valid"))
				Expect(statusOf(base, tok)).To(Equal(403))
			})
		})
	}
})

// ensureGateways installs NGINX and Caddy when they are missing, and fails
// (never skips) when that is not possible.
func ensureGateways() {
	if missingGateways() == "" {
		return
	}
	out, err := exec.Command(filepath.Join("..", "..", "hack", "gateways-install.sh")).CombinedOutput()
	Expect(err).NotTo(HaveOccurred(), "%s\n%s", installHint, out)
	Expect(missingGateways()).To(BeEmpty(), installHint)
}

func missingGateways() string {
	var missing []string
	for _, bin := range []string{"nginx", "caddy"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, bin)
		}
	}
	return strings.Join(missing, ", ")
}

// startBackend serves what a protected service sees: it answers with the
// identity headers it received, as JSON.
func startBackend() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	s := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{
			NamespaceHeader:   r.Header.Get(NamespaceHeader),
			NameHeader:        r.Header.Get(NameHeader),
			PermissionsHeader: r.Header.Get(PermissionsHeader),
			// Whether a credential reached the backend; never its value.
			"Authorization": presence(r.Header.Get("Authorization")),
			APIKeyHeader:    presence(r.Header.Get(APIKeyHeader)),
		})
	})}
	go func() { _ = s.Serve(ln) }()
	DeferCleanup(s.Close)
	return ln.Addr().String()
}

func presence(v string) string {
	if v == "" {
		return ""
	}
	return "present"
}

// The gateway configurations below are docs/gateways.md's: each strips the
// key's headers before the backend and sets every identity header from the
// verify answer, so a client's own never passes. NGINX caches verdicts as
// a platform team might (proxy_cache_valid 200 1m); the verify answer's
// Cache-Control (private, max-age=0 by default) overrides it, so
// revocation stays immediate.
const nginxConf = `
worker_processes 1;
daemon off;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path {{.Dir}}/body;
  proxy_temp_path {{.Dir}}/proxy;
  fastcgi_temp_path {{.Dir}}/fastcgi;
  uwsgi_temp_path {{.Dir}}/uwsgi;
  scgi_temp_path {{.Dir}}/scgi;
  proxy_cache_path {{.Dir}}/cache keys_zone=apikey:1m;
  upstream apikey_verify { server {{.Verify}}; keepalive 16; }
  server {
    listen {{.Listen}};
    location /billing/ {
      auth_request /_apikey_auth_billing;
      auth_request_set $apikey_namespace $upstream_http_x_apikey_namespace;
      auth_request_set $apikey_name $upstream_http_x_apikey_name;
      auth_request_set $apikey_permissions $upstream_http_x_apikey_permissions;
      proxy_set_header X-ApiKey-Namespace $apikey_namespace;
      proxy_set_header X-ApiKey-Name $apikey_name;
      proxy_set_header X-ApiKey-Permissions $apikey_permissions;
      proxy_set_header Authorization "";
      proxy_set_header X-API-Key "";
      proxy_pass http://{{.Backend}};
    }
    location = /_apikey_auth_billing {
      internal;
      proxy_pass http://apikey_verify/v1/auth?audience=billing&permission=invoices:read;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
    location / {
      auth_request /_apikey_auth;
      auth_request_set $apikey_namespace $upstream_http_x_apikey_namespace;
      auth_request_set $apikey_name $upstream_http_x_apikey_name;
      auth_request_set $apikey_permissions $upstream_http_x_apikey_permissions;
      proxy_set_header X-ApiKey-Namespace $apikey_namespace;
      proxy_set_header X-ApiKey-Name $apikey_name;
      proxy_set_header X-ApiKey-Permissions $apikey_permissions;
      proxy_set_header Authorization "";
      proxy_set_header X-API-Key "";
      auth_request_set $apikey_code $upstream_http_x_apikey_code;
      auth_request_set $apikey_ratelimit_policy $upstream_http_ratelimit_policy;
      auth_request_set $apikey_ratelimit $upstream_http_ratelimit;
      auth_request_set $apikey_retry_after $upstream_http_retry_after;
      add_header RateLimit-Policy $apikey_ratelimit_policy always;
      add_header RateLimit $apikey_ratelimit always;
      error_page 500 = @apikey_refused;
      proxy_pass http://{{.Backend}};
    }
    location @apikey_refused {
      add_header RateLimit-Policy $apikey_ratelimit_policy always;
      add_header RateLimit $apikey_ratelimit always;
      add_header Retry-After $apikey_retry_after always;
      if ($apikey_code = RateLimited) {
        return 429;
      }
      return 500;
    }
    location = /_apikey_auth {
      internal;
      proxy_cache apikey;
      proxy_cache_key "$http_authorization|$http_x_api_key|$remote_addr";
      proxy_cache_valid 200 1m;
      proxy_pass http://apikey_verify/v1/auth?namespace={{.Namespace}}&permission=invoices:read;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`

func startNGINX(dir, listen, backend, ns string) {
	// NGINX's workers run as another user: they must reach the cache
	// directory inside the test's private temp dir.
	Expect(os.Chmod(dir, 0o711)).To(Succeed())
	conf := writeTemplate(dir, "nginx.conf", nginxConf, listen, backend, ns)
	startProcess(dir, "nginx", "-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", conf)
}

const caddyfile = `
{
	admin off
	auto_https off
}
http://{{.Listen}} {
	handle /billing/* {
		forward_auth {{.Verify}} {
			uri /v1/auth?audience=billing&permission=invoices:read
			copy_headers X-ApiKey-Namespace X-ApiKey-Name X-ApiKey-Permissions
		}
		reverse_proxy {{.Backend}} {
			header_up -Authorization
			header_up -X-Api-Key
		}
	}
	route {
		forward_auth {{.Verify}} {
			uri /v1/auth?namespace={{.Namespace}}&permission=invoices:read
			copy_headers X-ApiKey-Namespace X-ApiKey-Name X-ApiKey-Permissions RateLimit RateLimit-Policy
		}
		@ratelimited header_regexp RateLimit ^"
		header @ratelimited RateLimit {http.request.header.RateLimit}
		header @ratelimited RateLimit-Policy {http.request.header.RateLimit-Policy}
		reverse_proxy {{.Backend}} {
			header_up -Authorization
			header_up -X-Api-Key
			header_up -RateLimit
			header_up -RateLimit-Policy
		}
	}
}
`

func startCaddy(dir, listen, backend, ns string) {
	conf := writeTemplate(dir, "Caddyfile", caddyfile, listen, backend, ns)
	startProcess(dir, "caddy", "run", "--config", conf, "--adapter", "caddyfile")
}

func writeTemplate(dir, name, text, listen, backend, ns string) string {
	var b strings.Builder
	Expect(template.Must(template.New(name).Parse(text)).Execute(&b, map[string]string{
		"Dir": dir, "Listen": listen, "Backend": backend, "Verify": verifyAddr, "Namespace": ns,
	})).To(Succeed())
	path := filepath.Join(dir, name)
	Expect(os.WriteFile(path, []byte(b.String()), 0o600)).To(Succeed())
	return path
}

// startProcess runs a gateway until the suite ends; its output goes to the
// Ginkgo log, shown when a spec fails.
func startProcess(dir, bin string, args ...string) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_DATA_HOME="+dir)
	cmd.Stdout, cmd.Stderr = GinkgoWriter, GinkgoWriter
	// Its own process group, so that NGINX's workers go with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	Expect(cmd.Start()).To(Succeed(), installHint)
	DeferCleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer ln.Close()
	return ln.Addr().String()
}

func waitListening(addr string) {
	Eventually(func() error {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	}).WithTimeout(15*time.Second).Should(Succeed(), "the gateway did not start; see its output above")
}

// get sends a request from a given loopback address and returns the status
// and, when the backend answered, the identity headers it saw.
func get(base, from string, headers map[string]string) (int, map[string]string) {
	return getPath(base, "/invoices", from, headers)
}

func getPath(base, path, from string, headers map[string]string) (int, map[string]string) {
	tr := &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}).DialContext}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest(http.MethodGet, base+path, nil)
	Expect(err).NotTo(HaveOccurred())
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	var seen map[string]string
	Expect(json.NewDecoder(resp.Body).Decode(&seen)).To(Succeed())
	return resp.StatusCode, seen
}

func statusOf(base, tok string) int {
	status, _ := get(base, "127.0.0.2", map[string]string{"Authorization": "Bearer " + tok})
	return status
}

// resultCount reads apikey_verifications_total for one result.
func resultCount(result string) float64 {
	m := &dto.Metric{}
	c, err := ResultsDesc.GetMetricWithLabelValues(result)
	Expect(err).NotTo(HaveOccurred())
	Expect(c.Write(m)).To(Succeed())
	return m.GetCounter().GetValue()
}
