package install

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/sets"
	"sigs.k8s.io/yaml"
)

// valueSet is one way to install the chart, and what it must produce.
type valueSet struct {
	name string
	sets []string
	// What the values ask for.
	watch          []string
	provider       string
	webhook        bool
	crds, keep     bool
	pdbs           int
	hpa            bool
	serviceMonitor bool
	networkPolicy  bool
	// plainMetrics: metrics.secure=false.
	plainMetrics bool
	// tokenSecret: the ServiceMonitor sends the token of this Secret
	// (name/key) instead of Prometheus' own.
	tokenSecret string
	// readers: subjects bound to the metrics-reader ClusterRole.
	readers int
	// leak: the leak endpoint is on; leakIngress: behind an Ingress;
	// leakTLS: it serves TLS itself.
	leak, leakIngress, leakTLS bool
}

var valueSets = []valueSet{
	{name: "defaults", provider: "operator", webhook: true, crds: true, keep: true, pdbs: 2},
	{name: "cert-manager", sets: []string{"certificates.provider=cert-manager"},
		provider: "cert-manager", webhook: true, crds: true, keep: true, pdbs: 2},
	{name: "cert-manager with a ClusterIssuer", sets: []string{"certificates.provider=cert-manager",
		"certificates.certManager.issuerRef.kind=ClusterIssuer", "certificates.certManager.issuerRef.name=corporate-ca"},
		provider: "cert-manager", webhook: true, crds: true, keep: true, pdbs: 2},
	{name: "watchNamespaces", sets: []string{"watchNamespaces={team-a,team-b}", "certificates.provider=helm", "metrics.serviceMonitor.enabled=true"},
		watch: []string{"team-a", "team-b"}, provider: "helm", webhook: true, crds: true, keep: true, pdbs: 2, serviceMonitor: true},
	{name: "watchNamespaces with operator certificates", sets: []string{"watchNamespaces={team-a}"},
		watch: []string{"team-a"}, provider: "operator", webhook: true, crds: true, keep: true, pdbs: 2},
	{name: "HA", sets: []string{
		"controller.replicas=3", "controller.podDisruptionBudget.minAvailable=2",
		"controller.topologySpreadConstraints[0].maxSkew=1",
		"controller.topologySpreadConstraints[0].topologyKey=kubernetes.io/hostname",
		"controller.topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule",
		"apiserver.autoscaling.enabled=true", "apiserver.autoscaling.minReplicas=3", "apiserver.autoscaling.maxReplicas=12",
		"apiserver.podDisruptionBudget.minAvailable=2",
		"apiserver.topologySpreadConstraints[0].maxSkew=1",
		"apiserver.topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone",
		"apiserver.topologySpreadConstraints[0].whenUnsatisfiable=ScheduleAnyway",
		"metrics.serviceMonitor.enabled=true", "metrics.serviceMonitor.labels.release=prometheus",
		"metrics.serviceMonitor.bearerTokenSecret.name=prometheus-token", "metrics.serviceMonitor.bearerTokenSecret.key=token",
		"metrics.reader.subjects[0].kind=ServiceAccount", "metrics.reader.subjects[0].name=prometheus", "metrics.reader.subjects[0].namespace=monitoring",
		"networkPolicy.enabled=true", "networkPolicy.verifyFrom[0].namespaceSelector.matchLabels.role=gateway",
		"crds.keep=false",
	}, provider: "operator", webhook: true, crds: true, keep: false, pdbs: 2, hpa: true, serviceMonitor: true, networkPolicy: true,
		tokenSecret: "prometheus-token/token", readers: 1},
	{name: "plain metrics", sets: []string{"metrics.secure=false", "metrics.serviceMonitor.enabled=true"},
		provider: "operator", webhook: true, crds: true, keep: true, pdbs: 2, serviceMonitor: true, plainMetrics: true},
	{name: "cluster-wide rate limits in Redis over TLS", sets: []string{
		"apiserver.limits.redis.url=rediss://limits-redis.apikey-system:6380/0", "apiserver.limits.redis.passwordSecret=redis-password",
		"apiserver.limits.redis.tls.secret=redis-tls", "apiserver.limits.redis.tls.clientCertificate=true",
	}, provider: "operator", webhook: true, crds: true, keep: true, pdbs: 2},
	{name: "leak endpoint behind an Ingress, TLS to the pod", sets: []string{
		"apiserver.leak.enabled=true", "apiserver.leak.reaction=rotate", "apiserver.leak.tls.secret=leak-tls",
		"apiserver.leak.github.keysURL=https://keys.example.com/secret_scanning", "apiserver.leak.github.keysMaxAge=30m",
		"apiserver.leak.ingress.enabled=true", "apiserver.leak.ingress.host=keys.example.com", "apiserver.leak.ingress.className=nginx",
		"apiserver.leak.ingress.tlsSecret=keys-example-com", "networkPolicy.enabled=true",
		"networkPolicy.leakFrom[0].namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name=ingress-nginx",
	}, provider: "operator", webhook: true, crds: true, keep: true, pdbs: 2, networkPolicy: true, leak: true, leakIngress: true, leakTLS: true},
	{name: "leak endpoint, plain HTTP, no Ingress", sets: []string{"apiserver.leak.enabled=true"},
		provider: "operator", webhook: true, crds: true, keep: true, pdbs: 2, leak: true},
	{name: "minimal", sets: []string{"webhook.enabled=false", "crds.enabled=false", "controller.replicas=1", "apiserver.replicas=1"},
		provider: "operator", webhook: false, crds: false, pdbs: 0},
}

func (v valueSet) render(t *testing.T) []*unstructured.Unstructured {
	t.Helper()
	return objects(t, helmTemplate(t, v.sets...))
}

func TestHelmLint(t *testing.T) {
	helm := filepath.Join(binDir(t), "helm")
	for _, v := range valueSets {
		t.Run(v.name, func(t *testing.T) {
			args := []string{"lint", "--strict", chartPath, "--namespace", releaseNS}
			for _, s := range v.sets {
				args = append(args, "--set", s)
			}
			out := run(t, nil, helm, args...)
			if !strings.Contains(out, "1 chart(s) linted, 0 chart(s) failed") {
				t.Errorf("helm lint:\n%s", out)
			}
		})
	}
}

// TestSchemaRefusesBadValues: values.schema.json and the chart's own checks
// stop a bad install before anything reaches the cluster.
func TestSchemaRefusesBadValues(t *testing.T) {
	helm := filepath.Join(binDir(t), "helm")
	for _, tc := range []struct{ set, want string }{
		{"certificates.provider=vault", "value must be one of 'operator', 'helm', 'cert-manager'"},
		{"controller.replicas=0", "/controller/replicas"},
		{"controller.replicaz=2", "additional properties 'replicaz' not allowed"},
		{"watchNamespaces={team-a,Team_B}", "/watchNamespaces/1"},
		{"watchNamespaces={team-a,team-a}", "/watchNamespaces"},
		{"keys.tokenPrefix=AK", "/keys/tokenPrefix"},
		{"keys.defaultLifetime=1y", "/keys/defaultLifetime"},
		{"keys.maxLifetime=forever", "/keys/maxLifetime"},
		{"logLevel=verbose", "/logLevel"},
		{"webhook.port=70000", "/webhook/port"},
		{"apiserver.service.type=ExternalName", "/apiserver/service/type"},
		{"apiserver.extraArgs[0]=oops", "/apiserver/extraArgs/0"},
		{"apiserver.trustedProxies[0]=gateway.example.com", "/apiserver/trustedProxies/0"},
		{"certificates.certManager.issuerRef.kind=ClusterIssuer", "missing property 'name'"},
		{"image.pullPolicy=Sometimes", "/image/pullPolicy"},
		{"crds.keep=yes", "/crds/keep"},
		{"metrics.secure=maybe", "/metrics/secure"},
		{"metrics.serviceMonitor.bearerTokenSecret.name=prometheus-token", "properties 'key' required"},
		{"metrics.reader.subjects[0].name=prometheus", "missing property 'kind'"},
		{"apiserver.limits.redis.url=redis://user:s3cret@redis:6379/0", "/apiserver/limits/redis/url"},
		{"apiserver.limits.redis.url=http://redis:6379", "/apiserver/limits/redis/url"},
		{"apiserver.limits.redis.timeout=forever", "/apiserver/limits/redis/timeout"},
		{"apiserver.leak.reaction=delete", "/apiserver/leak/reaction"},
		{"apiserver.leak.maxBodyBytes=100", "/apiserver/leak/maxBodyBytes"},
		{"apiserver.leak.github.keysURL=ftp://keys.example.com", "/apiserver/leak/github/keysURL"},
		{"apiserver.leak.github.keysMaxAge=forever", "/apiserver/leak/github/keysMaxAge"},
		{"apiserver.leak.ingress.host=Keys_Example", "/apiserver/leak/ingress/host"},
		{"apiserver.leak.enabled=true,apiserver.leak.ingress.enabled=true", "/apiserver/leak/ingress/host"},
		{"apiserver.autoscaling.enabled=true,apiserver.autoscaling.minReplicas=5,apiserver.autoscaling.maxReplicas=3",
			"apiserver.autoscaling.minReplicas (5) must not exceed apiserver.autoscaling.maxReplicas (3)"},
		{"controller.replicas=2,controller.podDisruptionBudget.minAvailable=2", "or no node could ever be drained"},
	} {
		t.Run(tc.set, func(t *testing.T) {
			out, err := tryRun(nil, helm, "template", release, chartPath, "--namespace", releaseNS, "--set", tc.set)
			if err == nil {
				t.Fatalf("helm template accepted --set %s:\n%.300s", tc.set, out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("helm template --set %s: %v\nwant an error containing %q", tc.set, err, tc.want)
			}
		})
	}
}

// TestChartValueSets checks, for every value set, what a reviewer would:
// hardened pods, TLS that verifies, RBAC that matches the markers, and
// no cluster-wide grant in watchNamespaces mode beyond what no Role can
// give.
func TestChartValueSets(t *testing.T) {
	for _, v := range valueSets {
		t.Run(v.name, func(t *testing.T) {
			objs := v.render(t)
			checkNamespaced(t, objs)
			checkPods(t, objs)
			checkAPIService(t, objs, v.provider)
			checkWebhooks(t, objs, v)
			checkRBAC(t, objs, v)
			checkCRDs(t, objs, v)
			checkArgs(t, objs, v)
			checkMetrics(t, objs, v)
			checkLeak(t, objs, v)
			counts := map[string]int{}
			for _, o := range objs {
				counts[o.GetKind()]++
			}
			for kind, want := range map[string]int{
				"PodDisruptionBudget":     v.pdbs,
				"HorizontalPodAutoscaler": b2i(v.hpa),
				"ServiceMonitor":          b2i(v.serviceMonitor),
				"NetworkPolicy":           2 * b2i(v.networkPolicy),
				"Deployment":              2,
				"Ingress":                 b2i(v.leakIngress),
			} {
				if counts[kind] != want {
					t.Errorf("%d %s, want %d", counts[kind], kind, want)
				}
			}
			if v.hpa {
				if d := deployment(t, objs, "apikey-operator-apiserver"); d.Spec.Replicas != nil {
					t.Errorf("the API server Deployment sets replicas (%d) although the HPA scales it", *d.Spec.Replicas)
				}
			}
		})
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

var clusterScoped = sets.New("CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "APIService",
	"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration", "Namespace",
	"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")

func checkNamespaced(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range objs {
		if clusterScoped.Has(o.GetKind()) != (o.GetNamespace() == "") {
			t.Errorf("%s %s has namespace %q", o.GetKind(), o.GetName(), o.GetNamespace())
		}
	}
}

// checkPods: non-root, read-only root filesystem, no privilege
// escalation, no capabilities, RuntimeDefault seccomp.
func checkPods(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, o := range ofKind(objs, "Deployment") {
		d := deployment(t, objs, o.GetName())
		psc := d.Spec.Template.Spec.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
			t.Errorf("Deployment %s: pod securityContext %+v, want runAsNonRoot and seccomp RuntimeDefault", d.Name, psc)
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			sc := c.SecurityContext
			if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
				sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 ||
				(sc.Privileged != nil && *sc.Privileged) {
				t.Errorf("Deployment %s container %s: securityContext %+v", d.Name, c.Name, sc)
			}
			if c.LivenessProbe == nil || c.ReadinessProbe == nil {
				t.Errorf("Deployment %s container %s has no liveness or readiness probe", d.Name, c.Name)
			}
		}
		if d.Spec.Template.Spec.ServiceAccountName != d.Name {
			t.Errorf("Deployment %s runs as ServiceAccount %q, want its own", d.Name, d.Spec.Template.Spec.ServiceAccountName)
		}
	}
}

// certFromSecret checks that a Secret's tls.crt is valid for name under
// its ca.crt, and returns that CA (base64, as caBundle holds it).
func certFromSecret(t *testing.T, objs []*unstructured.Unstructured, secret, name string) string {
	t.Helper()
	s := convert[corev1.Secret](t, find(t, objs, "Secret", secret))
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.Data["ca.crt"]) {
		t.Fatalf("Secret %s: ca.crt holds no certificate", secret)
	}
	block, _ := pem.Decode(s.Data["tls.crt"])
	if block == nil {
		t.Fatalf("Secret %s: tls.crt holds no PEM", secret)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cert.Verify(x509.VerifyOptions{DNSName: name, Roots: pool}); err != nil {
		t.Errorf("Secret %s: tls.crt does not verify for %s: %v", secret, name, err)
	}
	if len(s.Data["tls.key"]) == 0 {
		t.Errorf("Secret %s has no tls.key", secret)
	}
	return base64.StdEncoding.EncodeToString(s.Data["ca.crt"])
}

func checkCertManager(t *testing.T, objs []*unstructured.Unstructured, annotated *unstructured.Unstructured, secret, dnsName string) {
	t.Helper()
	ref := annotated.GetAnnotations()["cert-manager.io/inject-ca-from"]
	ns, name, _ := strings.Cut(ref, "/")
	cert := find(t, objs, "Certificate", name)
	if cert.GetNamespace() != ns {
		t.Errorf("%s %s: inject-ca-from %q, but the Certificate is in %q", annotated.GetKind(), annotated.GetName(), ref, cert.GetNamespace())
	}
	got, _, _ := unstructured.NestedString(cert.Object, "spec", "secretName")
	if got != secret {
		t.Errorf("Certificate %s writes Secret %q, want %q", name, got, secret)
	}
	dns, _, _ := unstructured.NestedStringSlice(cert.Object, "spec", "dnsNames")
	if !slices.Contains(dns, dnsName) {
		t.Errorf("Certificate %s: dnsNames %v lack %s", name, dns, dnsName)
	}
	issuer, _, _ := unstructured.NestedStringMap(cert.Object, "spec", "issuerRef")
	if issuer["kind"] != "ClusterIssuer" {
		find(t, objs, "Issuer", issuer["name"])
	}
}

func checkAPIService(t *testing.T, objs []*unstructured.Unstructured, provider string) {
	t.Helper()
	api := find(t, objs, "APIService", "v1alpha1.access.apikey-operator.io")
	if skip, _, _ := unstructured.NestedBool(api.Object, "spec", "insecureSkipTLSVerify"); skip {
		t.Error("APIService sets insecureSkipTLSVerify")
	}
	svcName, _, _ := unstructured.NestedString(api.Object, "spec", "service", "name")
	svcNS, _, _ := unstructured.NestedString(api.Object, "spec", "service", "namespace")
	port, _, _ := unstructured.NestedInt64(api.Object, "spec", "service", "port")
	svc := convert[corev1.Service](t, find(t, objs, "Service", svcName))
	if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return int64(p.Port) == port && p.TargetPort.StrVal == "https" }) {
		t.Errorf("APIService calls port %d of Service %s, which does not lead to the API server's https port: %+v", port, svcName, svc.Spec.Ports)
	}
	host := svcName + "." + svcNS + ".svc"
	volumeSecret := ""
	for _, v := range deployment(t, objs, "apikey-operator-apiserver").Spec.Template.Spec.Volumes {
		if v.Name == "apiserver-tls" {
			volumeSecret = v.Secret.SecretName
		}
	}
	caBundle, _, _ := unstructured.NestedString(api.Object, "spec", "caBundle")
	switch provider {
	case "cert-manager":
		if caBundle != "" {
			t.Error("APIService has a caBundle the cainjector would fight over")
		}
		checkCertManager(t, objs, api, volumeSecret, host)
	default:
		if ca := certFromSecret(t, objs, volumeSecret, host); caBundle != ca {
			t.Error("APIService caBundle is not the CA of the API server's certificate")
		}
	}
}

func checkWebhooks(t *testing.T, objs []*unstructured.Unstructured, v valueSet) {
	t.Helper()
	mutating := ofKind(objs, "MutatingWebhookConfiguration")
	validating := ofKind(objs, "ValidatingWebhookConfiguration")
	if !v.webhook {
		if len(mutating)+len(validating) > 0 {
			t.Error("webhook configurations rendered with webhook.enabled=false")
		}
		if args := deployment(t, objs, "apikey-operator-controller").Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--disable-webhooks") {
			t.Errorf("controller args %v lack --disable-webhooks", args)
		}
		return
	}
	if len(mutating) != 1 || len(validating) != 1 {
		t.Fatalf("%d mutating and %d validating webhook configurations, want one each", len(mutating), len(validating))
	}
	// The same webhooks as the markers generate into config/webhook.
	want := configWebhooks(t)
	controller := deployment(t, objs, "apikey-operator-controller")
	args := controller.Spec.Template.Spec.Containers[0].Args
	var got []string
	for _, cfg := range append(mutating, validating...) {
		var hooks []admissionv1.ValidatingWebhook // same fields for what is checked here
		raw, _, _ := unstructured.NestedSlice(cfg.Object, "webhooks")
		for _, h := range raw {
			var w admissionv1.ValidatingWebhook
			b, _ := yaml.Marshal(h)
			if err := yaml.Unmarshal(b, &w); err != nil {
				t.Fatal(err)
			}
			hooks = append(hooks, w)
		}
		for _, w := range hooks {
			got = append(got, fmt.Sprintf("%s %s %s", cfg.GetKind(), w.Name, *w.ClientConfig.Service.Path))
			s := w.ClientConfig.Service
			port := int32(443) // the API's default
			if s.Port != nil {
				port = *s.Port
			}
			svc := convert[corev1.Service](t, find(t, objs, "Service", s.Name))
			if s.Namespace != releaseNS || !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool {
				return p.Port == port && (p.TargetPort.StrVal == "webhook" || p.TargetPort.IntVal == 9443)
			}) {
				t.Errorf("webhook %s calls %s/%s port %d, which does not lead to the controller's webhook port", w.Name, s.Namespace, s.Name, port)
			}
			host := s.Name + "." + s.Namespace + ".svc"
			switch v.provider {
			case "helm":
				if ca := certFromSecret(t, objs, "apikey-operator-webhook-tls", host); base64.StdEncoding.EncodeToString(w.ClientConfig.CABundle) != ca {
					t.Errorf("webhook %s: caBundle is not the CA of the webhook's certificate", w.Name)
				}
			case "cert-manager":
				checkCertManager(t, objs, cfg, "apikey-operator-webhook-tls", host)
			case "operator":
				if len(w.ClientConfig.CABundle) > 0 {
					t.Errorf("webhook %s has a caBundle the operator would replace", w.Name)
				}
			}
			if v.watch != nil {
				sel := w.NamespaceSelector
				if sel == nil || len(sel.MatchExpressions) != 1 || sel.MatchExpressions[0].Key != "kubernetes.io/metadata.name" ||
					!cmp.Equal(sel.MatchExpressions[0].Values, v.watch) {
					t.Errorf("webhook %s: namespaceSelector %+v, want kubernetes.io/metadata.name In %v", w.Name, sel, v.watch)
				}
			}
		}
		if v.provider == "operator" {
			// The configuration the controller writes its CA into: the
			// flag, else the binary's default.
			flag := "--" + strings.ToLower(strings.TrimSuffix(cfg.GetKind(), "WebhookConfiguration")) + "-webhook-configuration"
			name := "apikey-operator" + strings.TrimPrefix(flag, "-")
			for _, a := range args {
				if v, ok := strings.CutPrefix(a, flag+"="); ok {
					name = v
				}
			}
			if name != cfg.GetName() {
				t.Errorf("controller writes its CA into %s %q, not into %q", cfg.GetKind(), name, cfg.GetName())
			}
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("webhooks differ from config/webhook/manifests.yaml (-config +chart):\n%s", diff)
	}
	certDir := slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--webhook-cert-dir=") })
	if certDir != (v.provider != "operator") {
		t.Errorf("controller args %v: --webhook-cert-dir present = %v with certificates.provider=%s", args, certDir, v.provider)
	}
}

func configWebhooks(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "config", "webhook", "manifests.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range objects(t, string(b)) {
		raw, _, _ := unstructured.NestedSlice(o.Object, "webhooks")
		for _, h := range raw {
			m := h.(map[string]any)
			path, _, _ := unstructured.NestedString(m, "clientConfig", "service", "path")
			out = append(out, fmt.Sprintf("%s %s %s", o.GetKind(), m["name"], path))
		}
	}
	return out
}

// grants flattens what a ServiceAccount may do, through every binding in
// objs, into "scope group resource verb name" strings; scope is "*" for
// a ClusterRoleBinding, a namespace for a RoleBinding. Bindings to roles
// that are not in objs (the cluster's own) appear as "ref <kind>/<name>".
func grants(t *testing.T, objs []*unstructured.Unstructured, sa string) sets.Set[string] {
	t.Helper()
	rules := func(kind, ns, name string) ([]rbacv1.PolicyRule, bool) {
		for _, o := range objs {
			if o.GetKind() == kind && o.GetName() == name && o.GetNamespace() == ns {
				if kind == "Role" {
					return convert[rbacv1.Role](t, o).Rules, true
				}
				return convert[rbacv1.ClusterRole](t, o).Rules, true
			}
		}
		return nil, false
	}
	out := sets.New[string]()
	for _, o := range objs {
		var subjects []rbacv1.Subject
		var ref rbacv1.RoleRef
		scope := "*"
		switch o.GetKind() {
		case "ClusterRoleBinding":
			b := convert[rbacv1.ClusterRoleBinding](t, o)
			subjects, ref = b.Subjects, b.RoleRef
		case "RoleBinding":
			b := convert[rbacv1.RoleBinding](t, o)
			subjects, ref, scope = b.Subjects, b.RoleRef, b.Namespace
		default:
			continue
		}
		if !slices.ContainsFunc(subjects, func(s rbacv1.Subject) bool {
			return s.Kind == "ServiceAccount" && s.Namespace == releaseNS && s.Name == sa
		}) {
			continue
		}
		ns := ""
		if ref.Kind == "Role" {
			ns = o.GetNamespace()
		}
		rs, ok := rules(ref.Kind, ns, ref.Name)
		if !ok {
			out.Insert(fmt.Sprintf("%s ref %s/%s", scope, ref.Kind, ref.Name))
			continue
		}
		for _, r := range rs {
			names := r.ResourceNames
			if len(names) == 0 {
				names = []string{"*"}
			}
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						for _, n := range names {
							out.Insert(fmt.Sprintf("%s %s %s %s %s", scope, g, res, v, n))
						}
					}
				}
			}
		}
	}
	return out
}

// configGrants are the grants of a generated ClusterRole in config/,
// without those of the API groups named in skip.
func configGrants(t *testing.T, path string, skip ...string) sets.Set[string] {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, path))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(b, &role); err != nil {
		t.Fatal(err)
	}
	out := sets.New[string]()
	for _, r := range role.Rules {
		for _, g := range r.APIGroups {
			if slices.Contains(skip, g) {
				continue
			}
			names := r.ResourceNames
			if len(names) == 0 {
				names = []string{"*"}
			}
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					for _, n := range names {
						out.Insert(fmt.Sprintf("* %s %s %s %s", g, res, v, n))
					}
				}
			}
		}
	}
	return out
}

func checkRBAC(t *testing.T, objs []*unstructured.Unstructured, v valueSet) {
	t.Helper()
	controller := grants(t, objs, "apikey-operator-controller")
	apiserver := grants(t, objs, "apikey-operator-apiserver")
	// Never, in any mode: the API server reading a Secret.
	for g := range apiserver {
		if strings.Contains(g, " secrets ") && (strings.Contains(g, " get ") || strings.Contains(g, " list ") || strings.Contains(g, " watch ")) {
			t.Errorf("the API server may read Secrets: %s", g)
		}
	}
	for _, want := range []string{"* ref ClusterRole/system:auth-delegator", "kube-system ref Role/extension-apiserver-authentication-reader"} {
		if !apiserver.Has(want) {
			t.Errorf("API server lacks %q", want)
		}
	}
	leader := []string{
		releaseNS + " coordination.k8s.io leases create *",
		releaseNS + " coordination.k8s.io leases get apikey-operator.keys.apikey-operator.io",
		releaseNS + " coordination.k8s.io leases update apikey-operator.keys.apikey-operator.io",
	}
	if !controller.HasAll(leader...) {
		t.Errorf("controller lacks leader election: %v", sets.List(sets.New(leader...).Difference(controller)))
	}
	// As the marker in webhook/certs writes it: both kinds, both names.
	webhookConfigs := sets.New[string]()
	if v.webhook && v.provider == "operator" {
		for _, kind := range []string{"mutating", "validating"} {
			for _, verb := range []string{"get", "update"} {
				for _, name := range []string{"mutating", "validating"} {
					webhookConfigs.Insert(fmt.Sprintf("* admissionregistration.k8s.io %swebhookconfigurations %s apikey-operator-%s-webhook-configuration", kind, verb, name))
				}
			}
		}
	}
	// Cluster-wide grants, compared with the markers' roles.
	clusterWide := func(g sets.Set[string]) sets.Set[string] {
		out := sets.New[string]()
		for s := range g {
			if strings.HasPrefix(s, "* ") {
				out.Insert(s)
			}
		}
		return out
	}
	cwController, cwAPIServer := clusterWide(controller), clusterWide(apiserver)
	// Secure metrics: the controller reviews scrapers' tokens and rights.
	metricsAuth := sets.New[string]()
	if !v.plainMetrics {
		metricsAuth.Insert("* ref ClusterRole/system:auth-delegator")
	}
	if len(v.watch) == 0 {
		want := configGrants(t, "config/rbac/role.yaml", "admissionregistration.k8s.io").Union(webhookConfigs).Union(metricsAuth)
		if diff := cmp.Diff(sets.List(want), sets.List(cwController)); diff != "" {
			t.Errorf("controller's cluster-wide grants differ from config/rbac/role.yaml (-config +chart):\n%s", diff)
		}
		want = configGrants(t, "config/apiserver/role.yaml").Insert("* ref ClusterRole/system:auth-delegator")
		if diff := cmp.Diff(sets.List(want), sets.List(cwAPIServer)); diff != "" {
			t.Errorf("API server's cluster-wide grants differ from config/apiserver/role.yaml (-config +chart):\n%s", diff)
		}
		return
	}
	// watchNamespaces: nothing cluster-wide but delegated authentication
	// (the API server's callers, both components' scrapers) and, with
	// operator certificates, the two webhook configurations by name.
	if diff := cmp.Diff(sets.List(webhookConfigs.Union(metricsAuth)), sets.List(cwController)); diff != "" {
		t.Errorf("controller's cluster-wide grants in watchNamespaces mode (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"* ref ClusterRole/system:auth-delegator"}, sets.List(cwAPIServer)); diff != "" {
		t.Errorf("API server's cluster-wide grants in watchNamespaces mode (-want +got):\n%s", diff)
	}
	allowed := sets.New(v.watch...).Insert(releaseNS, "kube-system")
	for _, o := range append(ofKind(objs, "Role"), ofKind(objs, "RoleBinding")...) {
		if !allowed.Has(o.GetNamespace()) {
			t.Errorf("%s %s/%s is outside the watched namespaces", o.GetKind(), o.GetNamespace(), o.GetName())
		}
	}
	for _, ns := range v.watch {
		for _, want := range []string{
			ns + " keys.apikey-operator.io apikeys watch *",
			ns + "  secrets list *",
			ns + "  namespaces get *",
		} {
			if !controller.Has(want) {
				t.Errorf("controller lacks %q", want)
			}
		}
		for _, want := range []string{
			ns + " keys.apikey-operator.io apikeys create *",
			ns + "  secrets create *",
			ns + "  namespaces get *",
		} {
			if !apiserver.Has(want) {
				t.Errorf("API server lacks %q", want)
			}
		}
		if apiserver.Has(ns+"  namespaces list *") || controller.Has(ns+"  namespaces list *") {
			t.Errorf("a Role in %s grants list on namespaces, which a Role cannot scope", ns)
		}
	}
}

// checkMetrics: both components serve metrics as metrics.secure says, the
// ServiceMonitor scrapes them the same way (HTTPS with a bearer token,
// or plain HTTP), and the metrics-reader ClusterRole grants get on
// /metrics and nothing else.
func checkMetrics(t *testing.T, objs []*unstructured.Unstructured, v valueSet) {
	t.Helper()
	want := fmt.Sprintf("--metrics-secure=%v", !v.plainMetrics)
	for _, name := range []string{"apikey-operator-controller", "apikey-operator-apiserver"} {
		if args := deployment(t, objs, name).Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, want) {
			t.Errorf("%s args %v lack %s", name, args, want)
		}
	}
	reader := convert[rbacv1.ClusterRole](t, find(t, objs, "ClusterRole", "apikey-operator-metrics-reader"))
	if diff := cmp.Diff([]rbacv1.PolicyRule{{NonResourceURLs: []string{"/metrics"}, Verbs: []string{"get"}}}, reader.Rules); diff != "" {
		t.Errorf("metrics-reader rules (-want +got):\n%s", diff)
	}
	var bound int
	for _, b := range ofKind(objs, "ClusterRoleBinding") {
		if crb := convert[rbacv1.ClusterRoleBinding](t, b); crb.RoleRef.Name == reader.Name {
			bound += len(crb.Subjects)
		}
	}
	if bound != v.readers {
		t.Errorf("%d subjects bound to metrics-reader, want %d", bound, v.readers)
	}
	if !v.serviceMonitor {
		return
	}
	endpoints, _, _ := unstructured.NestedSlice(ofKind(objs, "ServiceMonitor")[0].Object, "spec", "endpoints")
	if len(endpoints) != 1 {
		t.Fatalf("ServiceMonitor endpoints %v, want one", endpoints)
	}
	ep := endpoints[0].(map[string]any)
	wantEP := map[string]any{"port": "metrics", "path": "/metrics", "interval": "30s", "scheme": "http"}
	if !v.plainMetrics {
		wantEP["scheme"] = "https"
		wantEP["tlsConfig"] = map[string]any{"insecureSkipVerify": true}
		if name, key, ok := strings.Cut(v.tokenSecret, "/"); ok {
			wantEP["authorization"] = map[string]any{"type": "Bearer", "credentials": map[string]any{"name": name, "key": key}}
		} else {
			wantEP["bearerTokenFile"] = "/var/run/secrets/kubernetes.io/serviceaccount/token"
		}
	}
	if diff := cmp.Diff(wantEP, ep); diff != "" {
		t.Errorf("ServiceMonitor endpoint (-want +got):\n%s", diff)
	}
	// It selects both components' metrics Services.
	if diff := cmp.Diff(metricsServices, selected(ofKind(objs, "ServiceMonitor")[0], objs)); diff != "" {
		t.Errorf("Services the ServiceMonitor selects (-want +got):\n%s", diff)
	}
}

// metricsServices are the Services of both components' metrics.
var metricsServices = []string{"apikey-operator-apiserver", "apikey-operator-controller-metrics"}

// selected names the Services of objs a ServiceMonitor's selector matches.
func selected(monitor *unstructured.Unstructured, objs []*unstructured.Unstructured) []string {
	sel, _, _ := unstructured.NestedStringMap(monitor.Object, "spec", "selector", "matchLabels")
	var out []string
	for _, svc := range ofKind(objs, "Service") {
		if labels.SelectorFromSet(sel).Matches(labels.Set(svc.GetLabels())) {
			out = append(out, svc.GetName())
		}
	}
	slices.Sort(out)
	return out
}

func checkCRDs(t *testing.T, objs []*unstructured.Unstructured, v valueSet) {
	t.Helper()
	crds := ofKind(objs, "CustomResourceDefinition")
	if !v.crds {
		if len(crds) > 0 {
			t.Errorf("%d CRDs rendered with crds.enabled=false", len(crds))
		}
		return
	}
	files, err := filepath.Glob(filepath.Join(repoRoot, "config", "crd", "bases", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in config/crd/bases: %v", err)
	}
	if len(crds) != len(files) {
		t.Errorf("%d CRDs in the chart, %d in config/crd/bases", len(crds), len(files))
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src := objects(t, string(b))[0]
		got := find(t, objs, "CustomResourceDefinition", src.GetName())
		if diff := cmp.Diff(src.Object["spec"], got.Object["spec"]); diff != "" {
			t.Errorf("CRD %s differs from %s (-config +chart):\n%s", src.GetName(), f, diff)
		}
		wantAnnotations := src.GetAnnotations()
		if v.keep {
			wantAnnotations["helm.sh/resource-policy"] = "keep"
		}
		if diff := cmp.Diff(wantAnnotations, got.GetAnnotations()); diff != "" {
			t.Errorf("CRD %s annotations (-want +got):\n%s", src.GetName(), diff)
		}
		for k := range got.GetLabels() {
			if _, ok := src.GetAnnotations()[k]; ok {
				t.Errorf("CRD %s: annotation %s became a label", src.GetName(), k)
			}
		}
	}
}

func checkArgs(t *testing.T, objs []*unstructured.Unstructured, v valueSet) {
	t.Helper()
	for _, name := range []string{"apikey-operator-controller", "apikey-operator-apiserver"} {
		args := deployment(t, objs, name).Spec.Template.Spec.Containers[0].Args
		want := ""
		if v.watch != nil {
			want = "--watch-namespaces=" + strings.Join(v.watch, ",")
		}
		has := slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--watch-namespaces") })
		if has != (want != "") || (want != "" && !slices.Contains(args, want)) {
			t.Errorf("%s args %v, want %q", name, args, want)
		}
	}
	if args := deployment(t, objs, "apikey-operator-controller").Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--leader-elect") {
		t.Errorf("controller args %v lack --leader-elect", args)
	}
}

// TestKustomizeMatchesChart: config/default grants each ServiceAccount
// what the chart's defaults grant, and registers the same webhooks and
// APIService.
func TestKustomizeMatchesChart(t *testing.T) {
	kust := objects(t, run(t, nil, filepath.Join(binDir(t), "kubectl"), "kustomize", filepath.Join(repoRoot, "config", "default")))
	chart := valueSets[0].render(t)
	checkNamespaced(t, kust)
	checkPods(t, kust)
	checkAPIService(t, kust, "cert-manager")
	checkWebhooks(t, kust, valueSet{provider: "operator", webhook: true})
	checkCRDs(t, kust, valueSet{crds: true, keep: false})
	for _, sa := range []string{"apikey-operator-controller", "apikey-operator-apiserver"} {
		if diff := cmp.Diff(sets.List(grants(t, chart, sa)), sets.List(grants(t, kust, sa))); diff != "" {
			t.Errorf("ServiceAccount %s: grants differ (-chart +kustomize):\n%s", sa, diff)
		}
	}
	// config/monitoring's ServiceMonitor scrapes as the chart's does, and
	// selects both metrics Services of config/default.
	monitor := ofKind(objects(t, run(t, nil, filepath.Join(binDir(t), "kubectl"), "kustomize", filepath.Join(repoRoot, "config", "monitoring"))), "ServiceMonitor")
	chartMonitor := ofKind(objects(t, helmTemplate(t, "metrics.serviceMonitor.enabled=true")), "ServiceMonitor")
	if len(monitor) != 1 || len(chartMonitor) != 1 {
		t.Fatalf("%d ServiceMonitors in config/monitoring, %d in the chart; want one each", len(monitor), len(chartMonitor))
	}
	kEP, _, _ := unstructured.NestedSlice(monitor[0].Object, "spec", "endpoints")
	cEP, _, _ := unstructured.NestedSlice(chartMonitor[0].Object, "spec", "endpoints")
	if diff := cmp.Diff(cEP, kEP); diff != "" {
		t.Errorf("ServiceMonitor endpoints differ (-chart +config/monitoring):\n%s", diff)
	}
	if monitor[0].GetNamespace() != releaseNS {
		t.Errorf("config/monitoring's ServiceMonitor is in %q, want %s", monitor[0].GetNamespace(), releaseNS)
	}
	if diff := cmp.Diff(metricsServices, selected(monitor[0], kust)); diff != "" {
		t.Errorf("Services config/monitoring's ServiceMonitor selects in config/default (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(convert[rbacv1.ClusterRole](t, find(t, chart, "ClusterRole", "apikey-operator-metrics-reader")).Rules,
		convert[rbacv1.ClusterRole](t, find(t, kust, "ClusterRole", "apikey-operator-metrics-reader")).Rules); diff != "" {
		t.Errorf("metrics-reader differs (-chart +kustomize):\n%s", diff)
	}
	for _, name := range []string{"apikey-operator-controller", "apikey-operator-apiserver"} {
		if args := deployment(t, kust, name).Spec.Template.Spec.Containers[0].Args; !slices.Contains(args, "--metrics-secure") {
			t.Errorf("config/default's %s args %v lack --metrics-secure", name, args)
		}
	}
	if got := len(ofKind(kust, "PodDisruptionBudget")); got != 2 {
		t.Errorf("%d PodDisruptionBudgets in config/default, want 2", got)
	}
	for _, name := range []string{"apikey-operator-controller", "apikey-operator-apiserver"} {
		if *deployment(t, kust, name).Spec.Replicas != *deployment(t, chart, name).Spec.Replicas {
			t.Errorf("Deployment %s: replicas differ between config/default and the chart", name)
		}
	}
}

// checkLeak: with apiserver.leak.enabled, the API server runs the leak
// endpoint with the values' settings on a named port, its Service exposes
// it, the Ingress routes the one path GitHub calls (and nothing else) to
// that Service port, and the NetworkPolicy lets in only leakFrom on it;
// without it, none of that exists.
func checkLeak(t *testing.T, objs []*unstructured.Unstructured, v valueSet) {
	t.Helper()
	d := deployment(t, objs, "apikey-operator-apiserver")
	c := d.Spec.Template.Spec.Containers[0]
	var leakArgs []string
	for _, a := range c.Args {
		if strings.HasPrefix(a, "--leak-") {
			leakArgs = append(leakArgs, a)
		}
	}
	port := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "leak" })
	svc := convert[corev1.Service](t, find(t, objs, "Service", "apikey-operator-apiserver"))
	svcPort := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == "leak" })
	if !v.leak {
		if len(leakArgs) > 0 || port >= 0 || svcPort >= 0 {
			t.Errorf("leak endpoint off, yet args %v, container port %d, Service port %d", leakArgs, port, svcPort)
		}
		return
	}
	if port < 0 || svcPort < 0 || svc.Spec.Ports[svcPort].TargetPort.StrVal != "leak" {
		t.Fatalf("leak endpoint on: container ports %+v, Service ports %+v", c.Ports, svc.Spec.Ports)
	}
	want := []string{fmt.Sprintf("--leak-bind-address=:%d", c.Ports[port].ContainerPort), "--leak-max-body-bytes=1048576", "--leak-replay-window=24h",
		"--leak-github-keys-min-interval=1m"}
	if v.leakTLS {
		want = append(want, "--leak-reaction=rotate", "--leak-github-keys-url=https://keys.example.com/secret_scanning", "--leak-github-keys-max-age=30m",
			"--leak-tls-cert-file=/etc/apikey-operator/leak-tls/tls.crt", "--leak-tls-private-key-file=/etc/apikey-operator/leak-tls/tls.key")
		if !slices.ContainsFunc(d.Spec.Template.Spec.Volumes, func(vol corev1.Volume) bool {
			return vol.Secret != nil && vol.Secret.SecretName == "leak-tls"
		}) || !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/etc/apikey-operator/leak-tls" }) {
			t.Errorf("leak TLS: the Secret leak-tls is not mounted: volumes %+v", d.Spec.Template.Spec.Volumes)
		}
		if p := svc.Spec.Ports[svcPort].AppProtocol; p == nil || *p != "https" {
			t.Errorf("leak Service port appProtocol %v, want https", p)
		}
	} else {
		want = append(want, "--leak-reaction=disable", "--leak-github-keys-url=https://api.github.com/meta/public_keys/secret_scanning", "--leak-github-keys-max-age=1h")
	}
	for _, w := range want {
		if !slices.Contains(leakArgs, w) {
			t.Errorf("API server leak args %v lack %s", leakArgs, w)
		}
	}
	if v.leakIngress {
		ing := find(t, objs, "Ingress", "apikey-operator-apiserver-leak")
		rules, _, _ := unstructured.NestedSlice(ing.Object, "spec", "rules")
		if len(rules) != 1 {
			t.Fatalf("Ingress rules %v, want one", rules)
		}
		rule := rules[0].(map[string]any)
		paths, _, _ := unstructured.NestedSlice(rule, "http", "paths")
		if rule["host"] != "keys.example.com" || len(paths) != 1 {
			t.Fatalf("Ingress rule %v: want host keys.example.com and one path", rule)
		}
		p := paths[0].(map[string]any)
		backend, _, _ := unstructured.NestedStringMap(p, "backend", "service", "port")
		name, _, _ := unstructured.NestedString(p, "backend", "service", "name")
		if p["path"] != "/v1/leaks/github" || p["pathType"] != "Exact" || name != svc.Name || backend["name"] != "leak" {
			t.Errorf("Ingress path %v: want Exact /v1/leaks/github to %s port leak", p, svc.Name)
		}
		tls, _, _ := unstructured.NestedSlice(ing.Object, "spec", "tls")
		if len(tls) != 1 || tls[0].(map[string]any)["secretName"] != "keys-example-com" {
			t.Errorf("Ingress tls %v", tls)
		}
		if cls, _, _ := unstructured.NestedString(ing.Object, "spec", "ingressClassName"); cls != "nginx" {
			t.Errorf("Ingress class %q, want nginx", cls)
		}
	}
	if v.networkPolicy {
		np := find(t, objs, "NetworkPolicy", "apikey-operator-apiserver")
		rules, _, _ := unstructured.NestedSlice(np.Object, "spec", "ingress")
		found := false
		for _, r := range rules {
			ports, _, _ := unstructured.NestedSlice(r.(map[string]any), "ports")
			if len(ports) != 1 || ports[0].(map[string]any)["port"] != "leak" {
				continue
			}
			found = true
			from, _, _ := unstructured.NestedSlice(r.(map[string]any), "from")
			if len(from) != 1 {
				t.Errorf("NetworkPolicy lets everyone reach the leak port: %v, want networkPolicy.leakFrom", r)
			}
		}
		if !found {
			t.Errorf("NetworkPolicy has no rule for the leak port: %v", rules)
		}
	}
}

// TestKustomizeLeakMatchesChart: config/leak turns the leak endpoint on as
// the chart's apiserver.leak does: the same flags, ports and Ingress.
func TestKustomizeLeakMatchesChart(t *testing.T) {
	kust := objects(t, run(t, nil, filepath.Join(binDir(t), "kubectl"), "kustomize", filepath.Join(repoRoot, "config", "leak")))
	chart := objects(t, helmTemplate(t, "apiserver.leak.enabled=true", "apiserver.leak.servicePort=8095",
		"apiserver.leak.ingress.enabled=true", "apiserver.leak.ingress.host=keys.example.com"))
	// The same checks hold for both.
	checkLeak(t, kust, valueSet{leak: true, leakIngress: false})
	checkLeak(t, chart, valueSet{leak: true, leakIngress: false})
	leakArgs := func(objs []*unstructured.Unstructured) []string {
		var out []string
		for _, a := range deployment(t, objs, "apikey-operator-apiserver").Spec.Template.Spec.Containers[0].Args {
			if strings.HasPrefix(a, "--leak-") {
				out = append(out, a)
			}
		}
		slices.Sort(out)
		return out
	}
	if diff := cmp.Diff(leakArgs(chart), leakArgs(kust)); diff != "" {
		t.Errorf("leak flags differ (-chart +config/leak):\n%s", diff)
	}
	svcPort := func(objs []*unstructured.Unstructured) corev1.ServicePort {
		for _, p := range convert[corev1.Service](t, find(t, objs, "Service", "apikey-operator-apiserver")).Spec.Ports {
			if p.Name == "leak" {
				return p
			}
		}
		return corev1.ServicePort{}
	}
	if diff := cmp.Diff(svcPort(chart), svcPort(kust)); diff != "" {
		t.Errorf("leak Service port differs (-chart +config/leak):\n%s", diff)
	}
	rules := func(objs []*unstructured.Unstructured) any {
		r, _, _ := unstructured.NestedSlice(find(t, objs, "Ingress", "apikey-operator-apiserver-leak").Object, "spec", "rules")
		return r
	}
	if diff := cmp.Diff(rules(chart), rules(kust)); diff != "" {
		t.Errorf("leak Ingress rules differ (-chart +config/leak):\n%s", diff)
	}
}
