package install

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"sigs.k8s.io/yaml"
)

// The chart renders the mixin of config/monitoring when asked, unchanged:
// the PrometheusRule's spec is the rule file, the dashboard ConfigMap holds
// the dashboard JSON under the label Grafana's sidecar looks for. By
// default it renders neither (their CRD and Grafana may not be there).
func TestChartRendersTheMonitoringMixin(t *testing.T) {
	for _, o := range objects(t, helmTemplate(t)) {
		if k := o.GetKind(); k == "PrometheusRule" || (k == "ConfigMap" && o.GetLabels()["grafana_dashboard"] != "") {
			t.Errorf("defaults render a %s %s; monitoring is off by default", k, o.GetName())
		}
	}
	objs := objects(t, helmTemplate(t, "metrics.prometheusRule.enabled=true", "metrics.prometheusRule.labels.release=prometheus",
		"metrics.dashboard.enabled=true", "metrics.dashboard.namespace=grafana"))
	var rule, dashboard map[string]any
	for _, o := range objs {
		switch {
		case o.GetKind() == "PrometheusRule":
			if o.GetLabels()["release"] != "prometheus" || o.GetNamespace() != releaseNS {
				t.Errorf("PrometheusRule labels %v, namespace %q", o.GetLabels(), o.GetNamespace())
			}
			rule, _ = o.Object["spec"].(map[string]any)
		case o.GetKind() == "ConfigMap" && o.GetLabels()["grafana_dashboard"] == "1":
			if o.GetNamespace() != "grafana" {
				t.Errorf("dashboard ConfigMap in namespace %q, want grafana", o.GetNamespace())
			}
			data, _ := o.Object["data"].(map[string]any)
			raw, _ := data["apikey-operator.json"].(string)
			if err := json.Unmarshal([]byte(raw), &dashboard); err != nil {
				t.Errorf("the dashboard ConfigMap's apikey-operator.json is not JSON: %v", err)
			}
		}
	}
	var wantRule, wantDashboard map[string]any
	readAs(t, "../../config/monitoring/alerts.yaml", &wantRule, func(b []byte, v any) error { return yaml.Unmarshal(b, v) })
	readAs(t, "../../config/monitoring/dashboard.json", &wantDashboard, json.Unmarshal)
	if !reflect.DeepEqual(rule, wantRule) {
		t.Errorf("the PrometheusRule's spec differs from config/monitoring/alerts.yaml (run `make chart`)")
	}
	if !reflect.DeepEqual(dashboard, wantDashboard) {
		t.Errorf("the dashboard ConfigMap differs from config/monitoring/dashboard.json (run `make chart`)")
	}
}

func readAs(t *testing.T, path string, v any, unmarshal func([]byte, any) error) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := unmarshal(raw, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
