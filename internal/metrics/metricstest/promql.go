package metricstest

import (
	"fmt"
	"slices"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// TargetLabels are the labels Prometheus adds to every series it scrapes.
var TargetLabels = []string{"job", "instance"}

// Builtins are series Prometheus makes itself (per scrape target, or for alerting rules):
// queries may use them although the worker does not export them.
var Builtins = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped",
	"scrape_samples_post_metric_relabeling", "scrape_series_added", "ALERTS", "ALERTS_FOR_STATE"}

// Parse parses expr with Prometheus's own PromQL parser, as Prometheus (rules) and Grafana's
// Prometheus data source (after its variables are replaced) read it.
func Parse(expr string) (parser.Expr, error) {
	return parser.NewParser(parser.Options{}).ParseExpr(expr)
}

// Check parses expr and checks it against what the worker exports: every metric it selects
// is exported (or a Prometheus built-in), every label it matches on is one the metric has
// (or a target label), every equality or regular-expression matcher matches a value the
// metric is exported with, and every by and on label is carried by a metric under it. It
// returns the metric names expr selects and the problems found.
func (s Series) Check(expr string) (names []string, problems []error) {
	e, err := Parse(expr)
	if err != nil {
		return nil, []error{fmt.Errorf("parse %q: %w", expr, err)}
	}
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		switch n := node.(type) {
		case *parser.VectorSelector:
			name, errs := s.checkSelector(n)
			if name != "" && !slices.Contains(names, name) {
				names = append(names, name)
			}
			problems = append(problems, errs...)
		case *parser.AggregateExpr:
			if !n.Without {
				problems = append(problems, s.checkCarried("by", n.Grouping, n.Expr)...)
			}
		case *parser.BinaryExpr:
			if m := n.VectorMatching; m != nil && m.On {
				problems = append(problems, s.checkCarried("on", m.MatchingLabels, n.LHS)...)
				problems = append(problems, s.checkCarried("on", m.MatchingLabels, n.RHS)...)
			}
		}
		return nil
	})
	for i, p := range problems {
		problems[i] = fmt.Errorf("%s: %w", expr, p)
	}
	return names, problems
}

// checkSelector checks one selector; it returns the metric's name ("" when it has none).
func (s Series) checkSelector(vs *parser.VectorSelector) (string, []error) {
	name := vs.Name
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			name = m.Value
		}
	}
	if name == "" {
		return "", []error{fmt.Errorf("selector %s names no metric", vs)}
	}
	if slices.Contains(Builtins, name) {
		return name, nil
	}
	f, ok := s[name]
	if !ok {
		return name, []error{fmt.Errorf("%s is not exported by the worker", name)}
	}
	var errs []error
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel || slices.Contains(TargetLabels, m.Name) {
			continue
		}
		values, ok := f.Labels[m.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s has no label %s", name, m.Name))
			continue
		}
		if m.Type != labels.MatchEqual && m.Type != labels.MatchRegexp {
			continue
		}
		matched := false
		for v := range values {
			matched = matched || m.Matches(v)
		}
		if !matched {
			errs = append(errs, fmt.Errorf("%s: no %s value the worker exports matches %s", name, m.Name, m))
		}
	}
	return name, errs
}

// checkCarried checks that each label of ls (of a by or on clause) is a target label or a
// label of some metric selected under e.
func (s Series) checkCarried(clause string, ls []string, e parser.Expr) []error {
	carried := map[string]bool{}
	for _, l := range TargetLabels {
		carried[l] = true
	}
	builtin := false
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			if slices.Contains(Builtins, vs.Name) {
				builtin = true
			}
			for l := range s[vs.Name].Labels {
				carried[l] = true
			}
		}
		return nil
	})
	var errs []error
	for _, l := range ls {
		if !carried[l] && !builtin {
			errs = append(errs, fmt.Errorf("%s (%s) groups or matches on %s, which no metric under it carries", clause, e, l))
		}
	}
	return errs
}
