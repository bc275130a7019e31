package gateways

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	securityv1beta1 "istio.io/api/security/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwapiv1beta1 "sigs.k8s.io/gateway-api/apis/v1beta1"
	"sigs.k8s.io/yaml"

	// The typed_config of the samples: protojson resolves each "@type"
	// through the global registry, so every type used must be linked in.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

// samples is config/samples/gateways from this module's directory.
var samples = filepath.Join("..", "..", "config", "samples", "gateways")

// The operator's Service and gRPC port as the chart names them by default.
const (
	service = "apikey-operator-apiserver"
	port    = 9191
)

// object is one decoded document: what it is, and where it came from.
type object struct {
	where, apiVersion, kind string
	raw                     []byte // JSON
}

// documents splits a multi-document YAML file into JSON documents.
func documents(t *testing.T, where string, data []byte) []object {
	t.Helper()
	var out []object
	for i, doc := range bytes.Split(data, []byte("\n---")) {
		raw, err := yaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("%s, document %d: not YAML: %v", where, i+1, err)
		}
		if string(raw) == "null" {
			continue
		}
		var head struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
		}
		if err := yaml.Unmarshal(raw, &head); err != nil {
			t.Fatal(err)
		}
		out = append(out, object{where: fmt.Sprintf("%s, document %d (%s)", where, i+1, head.Kind), apiVersion: head.APIVersion, kind: head.Kind, raw: raw})
	}
	return out
}

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(samples, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// strict decodes a Kubernetes object into its Go type, refusing unknown
// fields.
func strict(t *testing.T, o object, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(o.raw, into); err != nil {
		t.Fatalf("%s: %v", o.where, err)
	}
}

// istioObject decodes an Istio object: metadata strictly into ObjectMeta,
// spec with protojson (strict by default) into the istio.io/api message.
// (istio.io/client-go's own JSON decoding ignores unknown fields.)
func istioObject(t *testing.T, o object, spec proto.Message) metav1.ObjectMeta {
	t.Helper()
	var obj struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   metav1.ObjectMeta `json:"metadata"`
		Spec       map[string]any    `json:"spec"`
	}
	strict(t, o, &obj)
	specJSON, err := yaml.Marshal(obj.Spec)
	if err != nil {
		t.Fatal(err)
	}
	specJSON, err = yaml.YAMLToJSON(specJSON)
	if err != nil {
		t.Fatal(err)
	}
	if err := protojson.Unmarshal(specJSON, spec); err != nil {
		t.Fatalf("%s: spec: %v", o.where, err)
	}
	return obj.Metadata
}

func TestEnvoyStaticConfig(t *testing.T) {
	raw, err := yaml.YAMLToJSON(read(t, "envoy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var b bootstrapv3.Bootstrap
	if err := protojson.Unmarshal(raw, &b); err != nil {
		t.Fatalf("envoy.yaml is not an Envoy Bootstrap: %v", err)
	}
	// The protos' own validation rules (protoc-gen-validate), as Envoy
	// applies them when it loads the file.
	if err := b.ValidateAll(); err != nil {
		t.Fatalf("envoy.yaml: %v", err)
	}
	var authz *extauthzv3.ExtAuthz
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() == "apikey_ext_authz" && c.GetHealthChecks()[0].GetGrpcHealthCheck().GetServiceName() != "envoy.service.auth.v3.Authorization" {
			t.Errorf("the ext_authz cluster's health check names another service")
		}
	}
	hcm := httpConnectionManager(t, &b)
	for _, f := range hcm.GetHttpFilters() {
		if f.GetName() == "envoy.filters.http.ext_authz" {
			authz = &extauthzv3.ExtAuthz{}
			if err := f.GetTypedConfig().UnmarshalTo(authz); err != nil {
				t.Fatal(err)
			}
		}
	}
	if authz == nil || authz.GetGrpcService().GetEnvoyGrpc().GetClusterName() != "apikey_ext_authz" || authz.GetFailureModeAllow() {
		t.Fatalf("envoy.yaml: no fail-closed gRPC ext_authz filter on the apikey_ext_authz cluster: %v", authz)
	}
	route := hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes()[0]
	assertScope(t, "envoy.yaml /invoices route", route.GetTypedPerFilterConfig()["envoy.filters.http.ext_authz"].GetValue())
}

// assertScope checks that a per-route ext_authz setting states the
// permission and the namespace in context extensions.
func assertScope(t *testing.T, where string, perRoute []byte) {
	t.Helper()
	var pr extauthzv3.ExtAuthzPerRoute
	if err := proto.Unmarshal(perRoute, &pr); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	ext := pr.GetCheckSettings().GetContextExtensions()
	if ext["permission"] == "" || ext["namespace"] == "" {
		t.Errorf("%s: context extensions %v do not state a permission and a namespace", where, ext)
	}
}

func TestEnvoyGateway(t *testing.T) {
	validateEnvoyGateway(t, documents(t, "envoy-gateway.yaml", read(t, "envoy-gateway.yaml")), map[string]int{"Gateway": 1, "HTTPRoute": 1, "SecurityPolicy": 1, "ReferenceGrant": 1})
}

// validateEnvoyGateway decodes Gateway API and Envoy Gateway objects into
// their types and checks the SecurityPolicy points at the operator.
func validateEnvoyGateway(t *testing.T, objs []object, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	for _, o := range objs {
		got[o.kind]++
		switch o.apiVersion + "/" + o.kind {
		case "gateway.networking.k8s.io/v1/Gateway":
			strict(t, o, &gwapiv1.Gateway{})
		case "gateway.networking.k8s.io/v1/HTTPRoute":
			var r gwapiv1.HTTPRoute
			strict(t, o, &r)
			checkExternalAuth(t, o.where, &r)
		case "gateway.networking.k8s.io/v1beta1/ReferenceGrant":
			var g gwapiv1beta1.ReferenceGrant
			strict(t, o, &g)
			if (g.Spec.From[0].Kind != "SecurityPolicy" && g.Spec.From[0].Kind != "HTTPRoute") || string(g.Spec.To[0].Kind) != "Service" || g.Spec.To[0].Name == nil || string(*g.Spec.To[0].Name) != service {
				t.Errorf("%s: does not grant SecurityPolicies or HTTPRoutes the operator's Service", o.where)
			}
		case "gateway.envoyproxy.io/v1alpha1/SecurityPolicy":
			var p egv1a1.SecurityPolicy
			strict(t, o, &p)
			checkSecurityPolicy(t, o.where, &p)
		default:
			t.Errorf("%s: unexpected %s %s", o.where, o.apiVersion, o.kind)
		}
	}
	for kind, n := range want {
		if got[kind] != n {
			t.Errorf("%d %s, want %d", got[kind], kind, n)
		}
	}
}

func checkSecurityPolicy(t *testing.T, where string, p *egv1a1.SecurityPolicy) {
	t.Helper()
	ea := p.Spec.ExtAuth
	if ea == nil || ea.GRPC == nil || len(ea.GRPC.BackendRefs) != 1 {
		t.Fatalf("%s: no extAuth.grpc with one backendRef", where)
	}
	ref := ea.GRPC.BackendRefs[0]
	if ref.Name != service || ref.Port == nil || *ref.Port != port {
		t.Errorf("%s: backendRef %s:%v, want %s:%d", where, ref.Name, ref.Port, service, port)
	}
	if ea.FailOpen == nil || *ea.FailOpen {
		t.Errorf("%s: failOpen must be set to false", where)
	}
	ext := map[string]string{}
	for _, e := range ea.ContextExtensions {
		if e.Value != nil {
			ext[e.Name] = *e.Value
		}
	}
	if ext["namespace"] == "" && ext["audience"] == "" {
		t.Errorf("%s: context extensions %v name no namespace or audience", where, ext)
	}
}

func TestIstio(t *testing.T) {
	raw, err := yaml.YAMLToJSON(read(t, "istio-mesh-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		MeshConfig map[string]any `json:"meshConfig"`
	}
	if err := yaml.UnmarshalStrict(raw, &values); err != nil {
		t.Fatalf("istio-mesh-config.yaml: %v", err)
	}
	meshJSON, _ := yaml.Marshal(values.MeshConfig)
	meshJSON, _ = yaml.YAMLToJSON(meshJSON)
	var mesh meshv1alpha1.MeshConfig
	if err := protojson.Unmarshal(meshJSON, &mesh); err != nil {
		t.Fatalf("istio-mesh-config.yaml: meshConfig: %v", err)
	}
	p := mesh.GetExtensionProviders()[0]
	g := p.GetEnvoyExtAuthzGrpc()
	if g == nil || !strings.HasPrefix(g.GetService(), service+".") || g.GetPort() != port || g.GetFailOpen() {
		t.Fatalf("istio-mesh-config.yaml: provider %v does not point fail-closed at %s:%d", p, service, port)
	}
	validateIstio(t, documents(t, "istio.yaml", read(t, "istio.yaml")), p.GetName(), true)
}

// validateIstio decodes AuthorizationPolicies (and, with scoped, the
// EnvoyFilter that states the scope) and checks they use the provider.
func validateIstio(t *testing.T, objs []object, provider string, scoped bool) {
	t.Helper()
	var policies, filters int
	for _, o := range objs {
		switch o.apiVersion + "/" + o.kind {
		case "security.istio.io/v1/AuthorizationPolicy":
			policies++
			var ap securityv1beta1.AuthorizationPolicy
			istioObject(t, o, &ap)
			if ap.GetAction() != securityv1beta1.AuthorizationPolicy_CUSTOM || ap.GetProvider().GetName() != provider {
				t.Errorf("%s: action %s provider %q, want CUSTOM %q", o.where, ap.GetAction(), ap.GetProvider().GetName(), provider)
			}
		case "networking.istio.io/v1alpha3/EnvoyFilter":
			filters++
			var ef networkingv1alpha3.EnvoyFilter
			istioObject(t, o, &ef)
			for i, cp := range ef.GetConfigPatches() {
				// The patch is a free-form Struct for Istio; decode it into
				// the Envoy type it patches.
				if cp.GetApplyTo() != networkingv1alpha3.EnvoyFilter_VIRTUAL_HOST {
					t.Fatalf("%s: patch %d applies to %s", o.where, i, cp.GetApplyTo())
				}
				js, err := protojson.Marshal(cp.GetPatch().GetValue())
				if err != nil {
					t.Fatal(err)
				}
				var vh routev3.VirtualHost
				if err := protojson.Unmarshal(js, &vh); err != nil {
					t.Fatalf("%s: patch %d is not a VirtualHost: %v", o.where, i, err)
				}
				assertScope(t, fmt.Sprintf("%s patch %d", o.where, i), vh.GetTypedPerFilterConfig()["envoy.filters.http.ext_authz"].GetValue())
			}
		default:
			t.Errorf("%s: unexpected %s %s", o.where, o.apiVersion, o.kind)
		}
	}
	if policies == 0 || (scoped && filters == 0) {
		t.Errorf("%d AuthorizationPolicies and %d EnvoyFilters", policies, filters)
	}
}

func httpConnectionManager(t *testing.T, b *bootstrapv3.Bootstrap) *hcmv3.HttpConnectionManager {
	t.Helper()
	var hcm hcmv3.HttpConnectionManager
	f := b.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0]
	if err := f.GetTypedConfig().UnmarshalTo(&hcm); err != nil {
		t.Fatal(err)
	}
	return &hcm
}

// helm is bin/helm of the main module, which `make test` builds.
func helm(t *testing.T, args ...string) []byte {
	t.Helper()
	bin := filepath.Join("..", "..", "bin", "helm")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("%s is missing: run `make helm` in the repository root", bin)
	}
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// chart is the operator's chart, rendered by the main module's helm.
var chart = filepath.Join("..", "..", "charts", "apikey-operator")

func TestChartRendersTheWiring(t *testing.T) {
	out := helm(t, "template", "apikey-operator", chart, "--namespace", "apikey-system",
		"--set", "gateways.envoyGateway.enabled=true,gateways.envoyGateway.namespace=billing,gateways.envoyGateway.permission=invoices:read",
		"--set", "gateways.envoyGateway.targetRefs[0].group=gateway.networking.k8s.io,gateways.envoyGateway.targetRefs[0].kind=HTTPRoute,gateways.envoyGateway.targetRefs[0].name=invoices",
		"--set", "gateways.istio.enabled=true,gateways.istio.namespace=billing,gateways.istio.permission=invoices:read,gateways.istio.paths[0]=/invoices*",
		"--set", "gateways.istio.targetRefs[0].group=gateway.networking.k8s.io,gateways.istio.targetRefs[0].kind=Gateway,gateways.istio.targetRefs[0].name=api",
		"--show-only", "templates/gateways.yaml")
	var eg, istio []object
	for _, o := range documents(t, "helm template", out) {
		if strings.HasPrefix(o.apiVersion, "gateway.") {
			eg = append(eg, o)
		} else {
			istio = append(istio, o)
		}
	}
	validateEnvoyGateway(t, eg, map[string]int{"SecurityPolicy": 1, "ReferenceGrant": 1})
	validateIstio(t, istio, "apikey-operator", true)
}

// TestChartWiringIsOffByDefault, and refuses to render half a wiring.
func TestChartWiringIsOffByDefault(t *testing.T) {
	out := helm(t, "template", "apikey-operator", chart)
	for _, kind := range []string{"SecurityPolicy", "AuthorizationPolicy", "EnvoyFilter", "ReferenceGrant"} {
		if bytes.Contains(out, []byte("kind: "+kind+"\n")) {
			t.Errorf("the default chart renders a %s", kind)
		}
	}
	for _, c := range []struct{ set, want string }{
		{"gateways.envoyGateway.enabled=true", "gateways.envoyGateway.namespace"},
		{"gateways.envoyGateway.enabled=true,gateways.envoyGateway.namespace=billing", "gateways.envoyGateway.targetRefs"},
		{"gateways.istio.enabled=true,gateways.istio.namespace=billing", "gateways.istio.targetRefs"},
	} {
		cmd := exec.Command(filepath.Join("..", "..", "bin", "helm"), "template", "x", chart, "--set", c.set)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("--set %s: %v, output does not name %s:\n%s", c.set, err, c.want, out)
		}
	}
}

// checkExternalAuth checks a GEP-1494 ExternalAuth filter, where a route
// has one, points at the operator's gRPC port.
func checkExternalAuth(t *testing.T, where string, r *gwapiv1.HTTPRoute) {
	t.Helper()
	for _, rule := range r.Spec.Rules {
		for _, f := range rule.Filters {
			if f.Type != gwapiv1.HTTPRouteFilterExternalAuth {
				continue
			}
			ea := f.ExternalAuth
			if ea == nil || ea.ExternalAuthProtocol != gwapiv1.HTTPRouteExternalAuthGRPCProtocol || ea.GRPCAuthConfig == nil ||
				string(ea.BackendRef.Name) != service || ea.BackendRef.Port == nil || *ea.BackendRef.Port != port {
				t.Errorf("%s: the ExternalAuth filter does not call %s:%d over GRPC: %+v", where, service, port, ea)
			}
		}
	}
}

func TestGatewayAPIExternalAuthFilter(t *testing.T) {
	validateEnvoyGateway(t, documents(t, "gateway-api-external-auth.yaml", read(t, "gateway-api-external-auth.yaml")), map[string]int{"HTTPRoute": 1, "ReferenceGrant": 1})
}
