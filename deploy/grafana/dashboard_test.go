// Package grafana_test checks the Grafana dashboard and its provisioning: importable into any
// Grafana (the Prometheus data source is a variable, no data source uid is written in it),
// every query parsed by Prometheus's own PromQL parser after Grafana's variables are
// replaced, every metric one the worker really registers, and the provisioning files
// matching what docker-compose mounts.
package grafana_test

import (
	"encoding/json"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/callagent/resilience/internal/metrics/metricstest"
)

const (
	dashboardFile = "dashboard.json"
	composeFile   = "../../docker-compose.yml"
	// dsVar is the dashboard's data source variable; every panel and query uses it.
	dsVar = "datasource"
)

// dsRef is how a panel or a query names the data source: the variable, never a uid.
var dsRef = map[string]any{"type": "prometheus", "uid": "${" + dsVar + "}"}

// grafanaBuiltIn is the data source of Grafana's own annotations and alerts.
var grafanaBuiltIn = map[string]any{"type": "grafana", "uid": "-- Grafana --"}

type dashboard struct {
	UID        string            `json:"uid"`
	Title      string            `json:"title"`
	Inputs     []json.RawMessage `json:"__inputs"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource map[string]any           `json:"datasource"`
	GridPos    struct{ X, Y, W, H int } `json:"gridPos"`
	Targets    []struct {
		RefID      string         `json:"refId"`
		Datasource map[string]any `json:"datasource"`
		Expr       string         `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

func load(t *testing.T) (dashboard, []byte) {
	t.Helper()
	body, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d, body
}

// allPanels lists the panels, those of collapsed rows included.
func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}

// TestDashboardIsPortable: a data source variable of type datasource (Prometheus), used by
// every panel and query; no data source uid anywhere else; no export placeholders that
// only the import dialog would fill in (provisioning does not).
func TestDashboardIsPortable(t *testing.T) {
	d, body := load(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: both are needed for a stable URL", d.UID, d.Title)
	}
	if len(d.Inputs) > 0 {
		t.Errorf("__inputs: the ${DS_...} placeholders are filled in only by the import dialog, not by provisioning; use the %s variable", dsVar)
	}
	found := false
	for _, v := range d.Templating.List {
		if v.Name == dsVar {
			found = true
			if v.Type != "datasource" || v.Query != "prometheus" {
				t.Errorf("variable %s: type %q, query %v; want a datasource variable of prometheus", dsVar, v.Type, v.Query)
			}
		}
	}
	if !found {
		t.Errorf("no %s variable in templating", dsVar)
	}

	ids := map[int]bool{}
	for _, p := range allPanels(d.Panels) {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24 columns", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			if p.Datasource != nil && !equal(p.Datasource, dsRef) {
				t.Errorf("row %q: datasource %v", p.Title, p.Datasource)
			}
			continue
		}
		if !equal(p.Datasource, dsRef) {
			t.Errorf("panel %q: datasource %v, want %v", p.Title, p.Datasource, dsRef)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			if !equal(q.Datasource, dsRef) {
				t.Errorf("panel %q query %s: datasource %v, want %v", p.Title, q.RefID, q.Datasource, dsRef)
			}
		}
	}

	// Anywhere in the file (annotations, variables, nested panels), a datasource is the
	// variable or Grafana's built-in one.
	var tree any
	if err := json.Unmarshal(body, &tree); err != nil {
		t.Fatal(err)
	}
	walk(tree, func(key string, v any) {
		if key != "datasource" {
			return
		}
		ds, ok := v.(map[string]any)
		if !ok {
			t.Errorf("a datasource given as %v, not {type, uid}", v)
			return
		}
		if !equal(ds, dsRef) && !equal(ds, grafanaBuiltIn) {
			t.Errorf("datasource %v names a data source by uid; use ${%s}", ds, dsVar)
		}
	})
}

// grafanaVars are Grafana's built-in variables, replaced by values of their kind so that the
// query parses as Prometheus will receive it.
var grafanaVars = map[string]string{
	"__rate_interval": "1m", "__interval": "15s", "__range": "1h",
	"__interval_ms": "15000", "__range_s": "3600", "__range_ms": "3600000",
}

var variable = regexp.MustCompile(`\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]`)

// substitute replaces Grafana's variables in expr; it reports the names it does not know.
func substitute(expr string) (string, []string) {
	var unknown []string
	out := variable.ReplaceAllStringFunc(expr, func(m string) string {
		sm := variable.FindStringSubmatch(m)
		name := sm[1] + sm[2] + sm[3]
		if v, ok := grafanaVars[name]; ok {
			return v
		}
		unknown = append(unknown, name)
		return m
	})
	return out, unknown
}

// TestDashboardQueries: every query parses with Prometheus's PromQL parser once Grafana's
// variables are replaced, and selects only metrics, labels and label values the worker
// exports; the operational metrics each have a panel.
func TestDashboardQueries(t *testing.T) {
	d, _ := load(t)
	exported := metricstest.Exported(t)
	used := map[string]bool{}
	for _, p := range allPanels(d.Panels) {
		for _, q := range p.Targets {
			expr, unknown := substitute(q.Expr)
			if len(unknown) > 0 {
				t.Errorf("panel %q query %s uses variables %v the dashboard does not define", p.Title, q.RefID, unknown)
				continue
			}
			names, problems := exported.Check(expr)
			for _, err := range problems {
				t.Errorf("panel %q query %s: %v", p.Title, q.RefID, err)
			}
			if len(names) == 0 && len(problems) == 0 {
				t.Errorf("panel %q query %s selects no metric", p.Title, q.RefID)
			}
			for _, n := range names {
				used[n] = true
			}
		}
	}
	for _, want := range []string{"callagent_contacts_processed_total", "callagent_dead_letters_total",
		"callagent_breaker_state", "callagent_build_info", "callagent_oldest_pending_age_seconds",
		"callagent_consumer_paused", "callagent_llm_tokens_total", "callagent_tts_characters_total",
		"callagent_alert_events_total", "callagent_alerts_total"} {
		if !used[want] {
			t.Errorf("no panel shows %s", want)
		}
	}
}

func TestSubstitute(t *testing.T) {
	got, unknown := substitute(`rate(x[$__rate_interval]) + increase(x[${__range}]) / [[__interval]] + $job + ${instance:regex}`)
	if want := `rate(x[1m]) + increase(x[1h]) / 15s + $job + ${instance:regex}`; got != want {
		t.Errorf("substitute = %s, want %s", got, want)
	}
	if !slices.Equal(unknown, []string{"job", "instance"}) {
		t.Errorf("unknown = %v", unknown)
	}
}

// TestProvisioning: docker-compose mounts the provisioning directory and this dashboard
// where the dashboard provider reads, and the provisioned Prometheus is the default data
// source, which the variable picks when nothing else is chosen.
func TestProvisioning(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Volumes []string `yaml:"volumes"`
		} `yaml:"services"`
	}
	readYAML(t, composeFile, &compose)
	g, ok := compose.Services["grafana"]
	if !ok {
		t.Fatalf("%s has no grafana service", composeFile)
	}
	mounts := map[string]string{} // container path → source
	for _, v := range g.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			mounts[parts[1]] = filepath.Join(filepath.Dir(composeFile), filepath.FromSlash(parts[0]))
		}
	}
	if src := mounts["/etc/grafana/provisioning"]; !same(t, src, "provisioning") {
		t.Errorf("%s mounts %q as /etc/grafana/provisioning, not deploy/grafana/provisioning", composeFile, src)
	}

	var providers struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "provisioning/dashboards/callagent.yml", &providers)
	if len(providers.Providers) == 0 {
		t.Fatal("no dashboard provider")
	}
	mounted := false
	for _, p := range providers.Providers {
		if p.Type != "file" {
			continue
		}
		for dst, src := range mounts {
			if path.Dir(dst) == path.Clean(p.Options.Path) && same(t, src, dashboardFile) {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("no file provider reads a directory where %s mounts %s (mounts %v)", composeFile, dashboardFile, mounts)
	}

	type source struct {
		Type      string `yaml:"type"`
		IsDefault bool   `yaml:"isDefault"`
	}
	var sources struct {
		Datasources []source `yaml:"datasources"`
	}
	readYAML(t, "provisioning/datasources/prometheus.yml", &sources)
	if !slices.ContainsFunc(sources.Datasources, func(d source) bool { return d.Type == "prometheus" && d.IsDefault }) {
		t.Errorf("no default Prometheus data source provisioned: the %s variable would start empty", dsVar)
	}
}

func readYAML(t *testing.T, file string, into any) {
	t.Helper()
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(body, into); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
}

func same(t *testing.T, a, b string) bool {
	t.Helper()
	if a == "" {
		return false
	}
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	if err != nil {
		t.Fatal(err)
	}
	return os.SameFile(sa, sb)
}

func equal(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// walk calls fn with every key and value of every object in v, depth first.
func walk(v any, fn func(key string, v any)) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			fn(k, x)
			walk(x, fn)
		}
	case []any:
		for _, x := range v {
			walk(x, fn)
		}
	}
}
