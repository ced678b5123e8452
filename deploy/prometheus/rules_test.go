// Package prometheus_test checks the Prometheus files: rules.yml with Prometheus's own rule
// loader and PromQL parser, against the metrics the worker really registers, and
// prometheus.yml's rule files and scrape target against the compose file that runs it.
package prometheus_test

import (
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/callagent/resilience/internal/metrics/metricstest"
)

const (
	rulesFile   = "rules.yml"
	configFile  = "prometheus.yml"
	composeFile = "../../docker-compose.yml"
	readme      = "../../README.md"
	// runbookBase starts every runbook_url: a section of the README's Operations part.
	runbookBase = "https://github.com/callagent/resilience/blob/main/README.md#operations-"
	// workerJob is the scrape job of the workers, which the rules select with up{job=...}.
	workerJob = "worker"
)

var severities = []string{"critical", "warning", "info"}

// loadRules parses rules.yml as Prometheus does at load time (strict fields, every expression
// parsed, every template of the annotations and labels parsed), failing on any error.
func loadRules(t *testing.T) *rulefmt.RuleGroups {
	t.Helper()
	groups, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation,
		parser.NewParser(parser.Options{}), slog.New(slog.NewTextHandler(io.Discard, nil)))
	for _, err := range errs {
		t.Errorf("rulefmt: %v", err)
	}
	if len(errs) > 0 {
		t.FailNow()
	}
	return groups
}

// TestRules: every rule loads, every expression parses and queries only what the worker
// exports (with label names and values it exports, the counters made at zero at start
// included) or Prometheus's own series, and every alert has a severity, a summary, a
// description and a runbook_url into the README's Operations part.
func TestRules(t *testing.T) {
	groups := loadRules(t)
	exported := metricstest.Exported(t)
	recorded := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				recorded[r.Record] = true
			}
		}
	}
	anchor := regexp.MustCompile(`^` + regexp.QuoteMeta(runbookBase) + `[a-z0-9]+(-[a-z0-9]+)*$`)
	alerts := map[string]bool{}
	used := map[string]bool{}
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			name := r.Alert + r.Record
			names, problems := exported.Check(r.Expr)
			for _, p := range problems {
				if strings.Contains(p.Error(), "is not exported") && slices.ContainsFunc(names, func(n string) bool { return recorded[n] }) {
					continue
				}
				t.Errorf("%s: %v", name, p)
			}
			if len(names) == 0 {
				t.Errorf("%s: %q selects no metric", name, r.Expr)
			}
			for _, n := range names {
				used[n] = true
			}
			if r.Record != "" {
				continue
			}
			if alerts[r.Alert] {
				t.Errorf("alert %s is defined twice", r.Alert)
			}
			alerts[r.Alert] = true
			if !slices.Contains(severities, r.Labels["severity"]) {
				t.Errorf("%s: severity %q, want one of %v", name, r.Labels["severity"], severities)
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s has no %s annotation", name, a)
				}
			}
			if u := r.Annotations["runbook_url"]; !anchor.MatchString(u) {
				t.Errorf("%s: runbook_url %q is not %s<topic>", name, u, runbookBase)
			}
		}
	}
	// The operational signals the rules must cover.
	for _, want := range []string{"CallAgentWorkerDown", "CallAgentWorkerVanished", "CallAgentNoWorkers",
		"CallAgentBreakerOpen", "CallAgentDeadLetters", "CallAgentQueueStuck", "CallAgentOldestPendingTooOld",
		"CallAgentConsumerPaused", "CallAgentAlertDeliveryFailing", "CallAgentAlertsDropped",
		"CallAgentAlertEventsLost", "CallAgentNATSUnreachable"} {
		if !alerts[want] {
			t.Errorf("no alert %s", want)
		}
	}
	for _, want := range []string{"up", "callagent_dead_letters_total", "callagent_alerts_total",
		"callagent_alert_events_total", "callagent_consumer_paused", "callagent_oldest_pending_age_seconds",
		"callagent_breaker_state"} {
		if !used[want] {
			t.Errorf("no rule queries %s", want)
		}
	}
}

// TestRunbookAnchorsExist: once the README has its Operations runbook (any "operations-"
// anchor), every runbook_url's anchor must exist in it, as a heading whose GitHub anchor it
// is or an explicit id.
func TestRunbookAnchorsExist(t *testing.T) {
	body, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	have := readmeAnchors(string(body))
	runbook := slices.ContainsFunc(slices.Collect(maps.Keys(have)), func(a string) bool { return strings.HasPrefix(a, "operations-") })
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			u := r.Annotations["runbook_url"]
			if u == "" {
				continue
			}
			a := strings.TrimPrefix(u[strings.Index(u, "#"):], "#")
			switch {
			case have[a]:
			case runbook:
				t.Errorf("%s: the README has no anchor %q", r.Alert, a)
			default:
				t.Logf("%s: the README has no Operations runbook yet; anchor %q to be written", r.Alert, a)
			}
		}
	}
}

// readmeAnchors returns the anchors GitHub makes for the README's headings (lower case,
// punctuation dropped, spaces to hyphens, -1, -2… for repeats) and its explicit id and name
// attributes.
func readmeAnchors(md string) map[string]bool {
	out := map[string]bool{}
	count := map[string]int{}
	fence := false
	for _, line := range strings.Split(md, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fence = !fence
			continue
		}
		if fence {
			continue
		}
		if h := strings.TrimLeft(line, "#"); len(h) < len(line) && len(line)-len(h) <= 6 && strings.HasPrefix(h, " ") {
			slug := githubSlug(strings.TrimSpace(h))
			if n := count[slug]; n > 0 {
				out[slug+"-"+strconv.Itoa(n)] = true
			} else {
				out[slug] = true
			}
			count[slug]++
		}
		for _, m := range explicitAnchor.FindAllStringSubmatch(line, -1) {
			out[m[1]] = true
		}
	}
	return out
}

var explicitAnchor = regexp.MustCompile(`<a\s+(?:id|name)="([^"]+)"`)

func githubSlug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// TestPrometheusConfig: prometheus.yml loads a rule file that docker-compose mounts from
// this directory's rules.yml, scrapes the worker job the rules select, on the port the
// compose file's workers serve METRICS_ADDR on.
func TestPrometheusConfig(t *testing.T) {
	var cfg struct {
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName      string `yaml:"job_name"`
			MetricsPath  string `yaml:"metrics_path"`
			DNSSDConfigs []struct {
				Names []string `yaml:"names"`
				Type  string   `yaml:"type"`
				Port  int      `yaml:"port"`
			} `yaml:"dns_sd_configs"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, configFile, &cfg)
	var compose struct {
		Services map[string]struct {
			Volumes     []string          `yaml:"volumes"`
			Environment map[string]string `yaml:"environment"`
		} `yaml:"services"`
	}
	readYAML(t, composeFile, &compose)
	prom, ok := compose.Services["prometheus"]
	if !ok {
		t.Fatalf("%s has no prometheus service", composeFile)
	}
	// mounts maps a path in the Prometheus container to the file mounted there.
	mounts := map[string]string{}
	for _, v := range prom.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) < 2 {
			continue
		}
		mounts[parts[1]] = filepath.Join(filepath.Dir(composeFile), filepath.FromSlash(parts[0]))
	}
	if src := mounts["/etc/prometheus/prometheus.yml"]; !sameFile(t, src, configFile) {
		t.Errorf("%s mounts %q as /etc/prometheus/prometheus.yml, not this directory's %s", composeFile, src, configFile)
	}
	if len(cfg.RuleFiles) == 0 {
		t.Fatalf("%s loads no rule file", configFile)
	}
	loaded := false
	for _, rf := range cfg.RuleFiles {
		if !path.IsAbs(rf) {
			rf = path.Join("/etc/prometheus", rf) // relative to the config file's directory
		}
		src, ok := mounts[rf]
		if !ok {
			t.Errorf("%s loads %s, which %s does not mount", configFile, rf, composeFile)
			continue
		}
		if _, err := os.Stat(src); err != nil {
			t.Errorf("%s loads %s, mounted from %s: %v", configFile, rf, src, err)
		}
		loaded = loaded || sameFile(t, src, rulesFile)
	}
	if !loaded {
		t.Errorf("%s does not load this directory's %s (rule files %v, mounts %v)", configFile, rulesFile, cfg.RuleFiles, mounts)
	}

	worker, ok := compose.Services["worker"]
	if !ok {
		t.Fatalf("%s has no worker service", composeFile)
	}
	_, port, err := net.SplitHostPort(worker.Environment["METRICS_ADDR"])
	if err != nil {
		t.Fatalf("the compose worker's METRICS_ADDR %q: %v", worker.Environment["METRICS_ADDR"], err)
	}
	found := false
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName != workerJob {
			continue
		}
		found = true
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("job %s scrapes %s, the worker serves /metrics", workerJob, sc.MetricsPath)
		}
		if len(sc.DNSSDConfigs) == 0 {
			t.Errorf("job %s has no dns_sd_configs: replicas of --scale would be missed", workerJob)
		}
		for _, d := range sc.DNSSDConfigs {
			if !slices.Contains(d.Names, "worker") {
				t.Errorf("job %s resolves %v, not the compose service worker", workerJob, d.Names)
			}
			if got := strconv.Itoa(d.Port); got != port {
				t.Errorf("job %s scrapes port %s, the compose workers serve METRICS_ADDR on %s", workerJob, got, port)
			}
		}
	}
	if !found {
		t.Errorf("%s has no job %q, which the rules select with up{job=%q}", configFile, workerJob, workerJob)
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

func sameFile(t *testing.T, a, b string) bool {
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
