package install

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apiserver/pkg/audit/policy"
)

// With apiserver.audit.enabled the API server gets k8s.io/apiserver's
// audit flags, a policy that k8s.io/apiserver itself loads, and the
// webhook's kubeconfig when one is named; by default none of it.
func TestChartAudit(t *testing.T) {
	d := deployment(t, objects(t, helmTemplate(t)), "apikey-operator-apiserver")
	for _, a := range d.Spec.Template.Spec.Containers[0].Args {
		if strings.HasPrefix(a, "--audit-") {
			t.Errorf("defaults pass %s; auditing is off by default", a)
		}
	}

	objs := objects(t, helmTemplate(t, "apiserver.audit.enabled=true", "apiserver.audit.webhookSecret=siem-webhook"))
	d = deployment(t, objs, "apikey-operator-apiserver")
	pod := d.Spec.Template.Spec
	args := pod.Containers[0].Args
	for _, want := range []string{"--audit-policy-file=/etc/apikey-operator/audit/policy.yaml", "--audit-log-path=-", "--audit-log-format=json",
		"--audit-webhook-config-file=/etc/apikey-operator/audit-webhook/kubeconfig"} {
		if !slices.Contains(args, want) {
			t.Errorf("API server args lack %s: %v", want, args)
		}
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	if v := volumes["audit-webhook"]; v.Secret == nil || v.Secret.SecretName != "siem-webhook" {
		t.Errorf("audit webhook volume: %+v", v)
	}
	cm := convert[corev1.ConfigMap](t, find(t, objs, "ConfigMap", "apikey-operator-audit-policy"))
	if v := volumes["audit-policy"]; v.ConfigMap == nil || v.ConfigMap.Name != cm.Name {
		t.Errorf("audit policy volume: %+v", v)
	}
	p, err := policy.LoadPolicyFromBytes([]byte(cm.Data["policy.yaml"]))
	if err != nil {
		t.Fatalf("k8s.io/apiserver refuses the chart's audit policy: %v\n%s", err, cm.Data["policy.yaml"])
	}
	if n := len(p.Rules); n != 2 || p.Rules[1].Level != "Metadata" {
		t.Errorf("default policy rules: %+v", p.Rules)
	}
}
