// Package monitoring checks the monitoring mixin in config/monitoring: the
// Prometheus alert rules, their unit tests and the Grafana dashboard. The
// mixin itself is data (YAML and JSON) that the chart ships; this package
// holds only what reads it: the expressions of every rule and panel, so
// its tests can prove each one parses and names only metrics the operator
// exports.
package monitoring

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/yaml"
)

// RuleFile is the part of a Prometheus rule file the checks read.
type RuleFile struct {
	Groups []struct {
		Name  string `json:"name"`
		Rules []Rule `json:"rules"`
	} `json:"groups"`
}

// Rule is an alerting or recording rule.
type Rule struct {
	Alert       string            `json:"alert,omitempty"`
	Record      string            `json:"record,omitempty"`
	Expr        string            `json:"expr"`
	For         string            `json:"for,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// LoadRules reads a rule file.
func LoadRules(path string) (*RuleFile, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var f RuleFile
	if err := yaml.UnmarshalStrict(raw, &f); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// Expression is a PromQL expression and where it comes from.
type Expression struct {
	Where, Expr string
}

// RuleExpressions are the expressions of every rule.
func (f *RuleFile) RuleExpressions() []Expression {
	var out []Expression
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			out = append(out, Expression{Where: "rule " + r.Alert + r.Record, Expr: r.Expr})
		}
	}
	return out
}

type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

// grafanaVariables stand in for what Grafana substitutes before it sends
// a query, so the query parses as PromQL.
var grafanaVariables = strings.NewReplacer(
	"$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h", "$namespace", ".*",
)

// DashboardExpressions are the PromQL of every panel, with Grafana's
// variables substituted, and the metric of every label_values() variable
// query (as a bare selector).
func DashboardExpressions(path string) ([]Expression, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var out []Expression
	for _, p := range d.Panels {
		for _, t := range p.Targets {
			out = append(out, Expression{Where: "panel " + p.Title, Expr: grafanaVariables.Replace(t.Expr)})
		}
	}
	for _, v := range d.Templating.List {
		q, _ := v.Query.(map[string]any)
		s, _ := q["query"].(string)
		if inner, ok := strings.CutPrefix(s, "label_values("); ok {
			metric, _, _ := strings.Cut(inner, ",")
			out = append(out, Expression{Where: "variable " + v.Name, Expr: strings.TrimSpace(metric)})
		}
	}
	return out, nil
}
