package extauthz

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"k8s.io/apimachinery/pkg/types"
	testclock "k8s.io/utils/clock/testing"

	keysv1 "github.com/apikey-operator/apikey-operator/api/v1alpha1"
	"github.com/apikey-operator/apikey-operator/internal/testkit"
	"github.com/apikey-operator/apikey-operator/internal/token"
	"github.com/apikey-operator/apikey-operator/internal/verify"
)

// t0 is the fixed "now" of the tests.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// fixture is the verify server (over an index the test fills, as the
// informers would) and the ext_authz server in front of it, both on
// loopback, and a client made of go-control-plane's own types.
type fixture struct {
	ix     *verify.Index
	clock  *testclock.FakePassiveClock
	reg    *prometheus.Registry
	srv    *Server
	client authv3.AuthorizationClient
	conn   *grpc.ClientConn
}

type setup struct {
	trusted      []string
	body         string
	headers      []string
	anyNamespace bool
}

func newFixture(t testing.TB, mods ...func(*setup)) *fixture {
	t.Helper()
	st := setup{trusted: []string{"127.0.0.1", "::1"}, body: BodyText}
	for _, m := range mods {
		m(&st)
	}
	f := &fixture{ix: verify.NewIndex(), clock: testclock.NewFakePassiveClock(t0), reg: prometheus.NewRegistry()}
	vo := verify.NewOptions()
	vo.TrustedProxies = st.trusted
	vo.AnyNamespace = st.anyNamespace
	log := logr.Discard()
	vs, err := verify.NewServerFromIndex(vo, f.ix, verify.Deps{Registerer: f.reg, Clock: f.clock, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	o := NewOptions()
	o.DeniedBody = st.body
	if st.headers != nil {
		o.KeyHeaders = st.headers
	}
	f.srv, err = NewServer(o, FromVerify(vs), log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// The verify server marks its index synced when it serves.
	vln := listen(t, "127.0.0.1:0")
	go func() { _ = vs.Serve(ctx, vln) }()
	ln := listen(t, "127.0.0.1:0")
	done := make(chan error, 1)
	go func() { done <- f.srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	f.conn = dial(t, ln.Addr().String())
	f.client = authv3.NewAuthorizationClient(f.conn)
	return f
}

func listen(t testing.TB, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func dial(t testing.TB, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// key adds an ApiKey to the index as the controller leaves it once
// issued, and returns its token.
func (f *fixture) key(t testing.TB, ns, name string, mods ...func(*keysv1.ApiKey)) string {
	t.Helper()
	tok, err := token.Mint("")
	if err != nil {
		t.Fatal(err)
	}
	f.ix.SetKey(testkit.IssuedKey(ns, name, tok, t0.Add(24*time.Hour), mods...))
	return tok
}

// check is what an Envoy route sends: the client's headers, its address,
// and the route's context extensions.
type check struct {
	headers    map[string]string
	source     string // client address; "" for none
	extensions map[string]string
	raw        bool // headers as header_map (encode_raw_headers), not a map
	// unscoped sends the extensions as given; otherwise a route naming no
	// namespace and no audience accepts testScope.
	unscoped bool
}

// testScope are the namespaces of the tests' keys, which their routes
// accept unless a test says otherwise.
const testScope = "ns,billing"

func (c check) request() *authv3.CheckRequest {
	if _, ok := c.extensions["audience"]; !ok && !c.unscoped && c.extensions["namespace"] == "" {
		ext := map[string]string{"namespace": testScope}
		for k, v := range c.extensions {
			ext[k] = v
		}
		c.extensions = ext
	}
	h := &authv3.AttributeContext_HttpRequest{Method: "GET", Path: "/invoices", Host: "api.example.com", Protocol: "HTTP/1.1"}
	if c.raw {
		h.HeaderMap = &corev3.HeaderMap{}
		for k, v := range c.headers {
			h.HeaderMap.Headers = append(h.HeaderMap.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(v)})
		}
	} else {
		h.Headers = c.headers
	}
	attrs := &authv3.AttributeContext{
		Request:           &authv3.AttributeContext_Request{Http: h},
		ContextExtensions: c.extensions,
	}
	if c.source != "" {
		attrs.Source = &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: c.source, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}},
		}}}
	}
	return &authv3.CheckRequest{Attributes: attrs}
}

func (f *fixture) check(t *testing.T, c check) *authv3.CheckResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := f.client.Check(ctx, c.request())
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return resp
}

func bearer(tok string) map[string]string { return map[string]string{"authorization": "Bearer " + tok} }

// headerMap flattens answer headers for assertions.
func headerMap(hs []*corev3.HeaderValueOption) map[string]string {
	out := map[string]string{}
	for _, h := range hs {
		out[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return out
}

// deniedStatus is the HTTP status of a denied answer, 200 for an allowed one.
func deniedStatus(t *testing.T, r *authv3.CheckResponse) int {
	t.Helper()
	if r.GetStatus().GetCode() == 0 {
		if r.GetOkResponse() == nil {
			t.Fatal("OK status without an ok_response")
		}
		return 200
	}
	if r.GetDeniedResponse() == nil {
		t.Fatalf("status %d without a denied_response", r.GetStatus().GetCode())
	}
	return int(r.GetDeniedResponse().GetStatus().GetCode())
}

func code(r *authv3.CheckResponse) string {
	if ok := r.GetOkResponse(); ok != nil {
		return "Valid"
	}
	return headerMap(r.GetDeniedResponse().GetHeaders())["x-apikey-code"]
}

// resultCount reads apikey_verifications_total for one result: the
// metric the forward-auth path counts too.
func (f *fixture) resultCount(t *testing.T, result string) float64 {
	t.Helper()
	return f.counter(t, "apikey_verifications_total", "result", result)
}

// answerCount reads apikey_verify_responses_total{endpoint="ext_authz"}
// for one HTTP status.
func (f *fixture) answerCount(t *testing.T, status int) float64 {
	t.Helper()
	return f.counter(t, "apikey_verify_responses_total", "code", strconv.Itoa(status), "endpoint", "ext_authz")
}

// counter reads a counter of the fixture's registry by labels.
func (f *fixture) counter(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := f.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				if !labelIs(m, labels[i], labels[i+1]) {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

func labelIs(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// perms and ips build an ApiKey's permissions and allowedIPs.
var perms, ips = testkit.Perms, testkit.IPs

func keyID(ns, name string) types.NamespacedName {
	return types.NamespacedName{Namespace: ns, Name: name}
}

// listServices asks the server's reflection service what it serves.
func listServices(t *testing.T, conn *grpc.ClientConn) []string {
	t.Helper()
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer stream.CloseSend()
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{}}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		out = append(out, s.GetName())
	}
	return out
}
