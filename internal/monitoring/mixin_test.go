package monitoring_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/VictoriaMetrics/metricsql"
	"sigs.k8s.io/yaml"

	"github.com/apikey-operator/apikey-operator/internal/monitoring"
)

const dir = "../../config/monitoring"

// promtool is Debian's, installed by hack/gateways-install.sh (make test
// runs it).
func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: run `make gateways` (hack/gateways-install.sh installs Debian's prometheus package, which has it)")
	}
	return p
}

func TestPromtoolCheckAndUnitTests(t *testing.T) {
	p := promtool(t)
	for _, args := range [][]string{{"check", "rules", "alerts.yaml"}, {"test", "rules", "alerts_test.yaml"}} {
		cmd := exec.Command(p, args...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// Every alert has a unit test in which it fires, and one in which it
// stays silent (an expectation of no alerts at some time).
func TestEveryAlertHasUnitTests(t *testing.T) {
	rules, err := monitoring.LoadRules(filepath.Join(dir, "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "alerts_test.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var tests struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string `json:"alertname"`
				ExpAlerts []any  `json:"exp_alerts"`
			} `json:"alert_rule_test"`
		} `json:"tests"`
	}
	if err := yaml.Unmarshal(raw, &tests); err != nil {
		t.Fatal(err)
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				silent[a.Alertname] = true
			}
		}
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			n++
			if !fires[r.Alert] || !silent[r.Alert] {
				t.Errorf("alert %s: needs a unit test where it fires (%t) and one where it does not (%t)", r.Alert, fires[r.Alert], silent[r.Alert])
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, s)
			}
		}
	}
	if n < 8 {
		t.Errorf("%d alerts; the issue asks for expiry (7d, 1d), not Ready, verify errors and latency, brute force, reconcile errors and webhook certificate", n)
	}
}

// allExpressions are the rules' and the dashboard's.
func allExpressions(t *testing.T) []monitoring.Expression {
	t.Helper()
	rules, err := monitoring.LoadRules(filepath.Join(dir, "alerts.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dash, err := monitoring.DashboardExpressions(filepath.Join(dir, "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(dash) < 10 {
		t.Fatalf("only %d dashboard expressions found; the dashboard's shape changed?", len(dash))
	}
	return append(rules.RuleExpressions(), dash...)
}

// Prometheus' own parser, through promtool, is the judge of whether an
// expression is valid PromQL: the dashboard's expressions are checked as
// recording rules of a throw-away rule file.
func TestEveryExpressionParses(t *testing.T) {
	p := promtool(t)
	var f monitoring.RuleFile
	f.Groups = make([]struct {
		Name  string            `json:"name"`
		Rules []monitoring.Rule `json:"rules"`
	}, 1)
	f.Groups[0].Name = "all"
	for i, e := range allExpressions(t) {
		f.Groups[0].Rules = append(f.Groups[0].Rules, monitoring.Rule{Record: fmt.Sprintf("check:expr_%d", i), Expr: e.Expr})
	}
	raw, err := yaml.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "all.yaml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(p, "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules over every rule and dashboard expression: %v\n%s", err, out)
	}
}

// metricNames walks an expression's syntax tree for the metric names it
// selects. metricsql is a small, dependency-light PromQL parser; the
// strict judge of validity is promtool above.
func metricNames(t *testing.T, e monitoring.Expression) []string {
	t.Helper()
	expr, err := metricsql.Parse(e.Expr)
	if err != nil {
		t.Fatalf("%s: parse %q: %v", e.Where, e.Expr, err)
	}
	var names []string
	metricsql.VisitAll(expr, func(x metricsql.Expr) {
		me, ok := x.(*metricsql.MetricExpr)
		if !ok {
			return
		}
		for _, group := range me.LabelFilterss {
			for _, f := range group {
				if f.Label == "__name__" && !f.IsRegexp && !f.IsNegative {
					names = append(names, f.Value)
				}
			}
		}
	})
	if len(names) == 0 {
		t.Errorf("%s: %q selects no metric by name", e.Where, e.Expr)
	}
	slices.Sort(names)
	return slices.Compact(names)
}
