package deploy_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	serializerjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
)

// natsValuesFile holds the values of the official NATS chart (https://github.com/nats-io/k8s,
// helm/charts/nats/values.yaml), and the `helm upgrade --install` command in its comments.
var natsValuesFile = filepath.Join(manifestDir, helmDir, "nats-values.yaml")

// natsChart is the chart the values are for, as the command names it.
const natsChart = "nats/nats"

// natsClusterSize is the servers of the JetStream cluster: R3 streams (STREAM_REPLICAS=3) keep
// a quorum with one down.
const natsClusterSize = 3

// Ports of the chart's defaults that the values do not set (config.nats.port, the cluster's).
const (
	natsClientPort  = 4222
	natsClusterPort = 6222
)

// natsValues is the part of the chart's values these files set, with the chart's key names; a
// key outside it fails the strict decoding, so add it here when the values need one (and check
// it exists in the chart's values.yaml: Helm ignores unknown keys).
type natsValues struct {
	Config struct {
		Cluster struct {
			Enabled  bool `json:"enabled"`
			Replicas int  `json:"replicas"`
		} `json:"cluster"`
		JetStream struct {
			Enabled   bool `json:"enabled"`
			FileStore struct {
				Enabled *bool  `json:"enabled"`
				Dir     string `json:"dir"`
				PVC     struct {
					Enabled          *bool             `json:"enabled"`
					Size             resource.Quantity `json:"size"`
					StorageClassName *string           `json:"storageClassName,omitempty"`
				} `json:"pvc"`
				MaxSize *resource.Quantity `json:"maxSize,omitempty"`
			} `json:"fileStore"`
			// Merge is merged into the server's jetstream block.
			Merge map[string]any `json:"merge"`
		} `json:"jetstream"`
		Monitor struct {
			Enabled *bool `json:"enabled"`
			Port    int   `json:"port"`
		} `json:"monitor"`
	} `json:"config"`
	Container struct {
		// Env is the nats container's environment: the chart takes strings (or valueFrom maps).
		Env   map[string]string `json:"env"`
		Merge struct {
			Resources corev1.ResourceRequirements `json:"resources"`
		} `json:"merge"`
	} `json:"container"`
	PodTemplate struct {
		// TopologySpreadConstraints is keyed by topologyKey; the chart adds the labelSelector.
		TopologySpreadConstraints map[string]corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
	} `json:"podTemplate"`
}

// natsRelease is the NATS installation the files describe: the values, and the release name
// and namespace of the helm command in their comments.
type natsRelease struct {
	values    natsValues
	name      string // the Helm release
	namespace string
	version   string // the chart's version, as pinned
}

// fullname is the chart's "nats.fullname" without overrides: the release name when it contains
// the chart's name, else <release>-nats. It names the client Service and the StatefulSet.
func (r natsRelease) fullname() string {
	if strings.Contains(r.name, "nats") {
		return r.name
	}
	return r.name + "-nats"
}

// headlessService is the chart's headless Service, which resolves each server's pod by name.
func (r natsRelease) headlessService() string { return r.fullname() + "-headless" }

// helmCommand finds `helm install|upgrade --install <release> nats/nats ...` in the comments,
// with its continuation lines joined.
var helmCommand = regexp.MustCompile(`helm (?:upgrade --install|install) (\S+) ` + regexp.QuoteMeta(natsChart) + `((?:[ \t]+\S+)*)`)

// GetObjectKind and DeepCopyObject make natsValues a runtime.Object, only so that the
// apimachinery's strict YAML decoder (case-sensitive, unlike encoding/json) takes it.
func (v *natsValues) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }

func (v *natsValues) DeepCopyObject() runtime.Object {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out natsValues
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return &out
}

// decodeNATSValues decodes values strictly, as the API server decodes objects: unknown keys,
// keys in the wrong case and duplicate keys are errors.
func decodeNATSValues(data []byte) (natsValues, error) {
	var v natsValues
	s := serializerjson.NewSerializerWithOptions(serializerjson.DefaultMetaFactory, nil, runtime.NewScheme(),
		serializerjson.SerializerOptions{Yaml: true, Strict: true})
	_, _, err := s.Decode(data, nil, &v)
	return v, err
}

// loadNATSRelease reads natsValuesFile and the helm command in its comments.
func loadNATSRelease(t testing.TB) natsRelease {
	t.Helper()
	data, err := os.ReadFile(natsValuesFile)
	if err != nil {
		t.Fatal(err)
	}
	var r natsRelease
	if r.values, err = decodeNATSValues(data); err != nil {
		t.Fatalf("%s: %v", natsValuesFile, err)
	}
	var comments []string
	for line := range strings.Lines(string(data)) {
		if c, ok := strings.CutPrefix(strings.TrimSpace(line), "#"); ok {
			comments = append(comments, strings.TrimSpace(c))
		}
	}
	text := strings.ReplaceAll(strings.Join(comments, "\n"), "\\\n", " ")
	match := helmCommand.FindStringSubmatch(text)
	if match == nil {
		t.Fatalf("%s: no `helm upgrade --install <release> %s ...` command in the comments", natsValuesFile, natsChart)
	}
	r.name = match[1]
	args := strings.Fields(match[2])
	readsValues := false
	for i, a := range args {
		next := func() string {
			if i+1 < len(args) {
				return args[i+1]
			}
			return ""
		}
		switch {
		case a == "-n" || a == "--namespace":
			r.namespace = next()
		case strings.HasPrefix(a, "--namespace="):
			r.namespace = strings.TrimPrefix(a, "--namespace=")
		case a == "--version":
			r.version = next()
		case a == "-f" || a == "--values":
			if got := filepath.Clean(next()); got == filepath.Join("deploy", natsValuesFile) {
				readsValues = true
			} else {
				t.Errorf("%s: the helm command reads values from %s, not this file", natsValuesFile, got)
			}
		case strings.HasPrefix(a, "--set"):
			t.Errorf("%s: the helm command has %s: put every value in this file, where the tests check it", natsValuesFile, a)
		}
	}
	if !readsValues {
		t.Errorf("%s: the helm command does not read this file (-f deploy/%s)", natsValuesFile, natsValuesFile)
	}
	if r.namespace == "" {
		t.Fatalf("%s: the helm command names no --namespace", natsValuesFile)
	}
	if r.version == "" {
		t.Errorf("%s: the helm command pins no --version of the chart", natsValuesFile)
	}
	return r
}

// TestNATSValuesDecodeStrictly: the values decode into the keys the tests know, and a
// misspelt, miscased or duplicate key does not.
func TestNATSValuesDecodeStrictly(t *testing.T) {
	loadNATSRelease(t)
	const good = "config:\n  cluster:\n    enabled: true\n"
	if _, err := decodeNATSValues([]byte(good)); err != nil {
		t.Fatalf("valid values: %v", err)
	}
	for name, doc := range map[string]string{
		"unknown key":   "config:\n  clustr:\n    enabled: true\n",
		"wrong case":    "config:\n  cluster:\n    Enabled: true\n",
		"duplicate key": "config:\n  cluster:\n    enabled: true\n    enabled: false\n",
		"nested key":    "config:\n  jetstream:\n    fileStore:\n      pvc:\n        sise: 10Gi\n",
		"resources":     "container:\n  merge:\n    resources:\n      limit:\n        cpu: 1\n",
	} {
		if _, err := decodeNATSValues([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without an error", name)
		}
	}
}

// TestNATSCluster: a 3-server cluster, and the workers' streams replicated on all three.
func TestNATSCluster(t *testing.T) {
	c := loadNATSRelease(t).values.Config.Cluster
	if !c.Enabled || c.Replicas != natsClusterSize {
		t.Errorf("config.cluster: enabled %t, replicas %d; want a %d-server cluster", c.Enabled, c.Replicas, natsClusterSize)
	}
	m := loadManifests(t)
	for _, dep := range m.deployments {
		for _, ctr := range dep.Spec.Template.Spec.Containers {
			if r := m.workerConfig(t, dep, ctr).Topology.Replicas; r != natsClusterSize || r > c.Replicas {
				t.Errorf("Deployment %s container %s: STREAM_REPLICAS %d; want %d on the %d-server cluster", dep.Name, ctr.Name, r, natsClusterSize, c.Replicas)
			}
		}
	}
}

// TestNATSJetStreamFileStore: JetStream on, storing its files on a PVC of a set size.
func TestNATSJetStreamFileStore(t *testing.T) {
	js := loadNATSRelease(t).values.Config.JetStream
	fs := js.FileStore
	if !js.Enabled {
		t.Error("config.jetstream.enabled is not true")
	}
	if !isTrue(fs.Enabled) || !isTrue(fs.PVC.Enabled) {
		t.Errorf("config.jetstream.fileStore: enabled %v, pvc.enabled %v; set both to true (not left to the chart's defaults)", deref(fs.Enabled), deref(fs.PVC.Enabled))
	}
	if fs.Dir == "" {
		t.Error("config.jetstream.fileStore.dir is unset")
	}
	if fs.PVC.Size.Sign() <= 0 || fs.PVC.Size.Format != resource.BinarySI {
		t.Errorf("config.jetstream.fileStore.pvc.size %s: want a positive size with a binary suffix (Gi)", fs.PVC.Size.String())
	}
	if fs.MaxSize != nil && fs.MaxSize.Cmp(fs.PVC.Size) > 0 {
		t.Errorf("config.jetstream.fileStore.maxSize %s is above the PVC's %s", fs.MaxSize.String(), fs.PVC.Size.String())
	}
}

// renderNATSConfig builds the parts of nats.conf the chart renders from the values these files
// set (files/config/config.yaml, cluster.yaml and jetstream.yaml of the chart), with the chart's
// formatting: JSON, and "<< x >>" strings unquoted.
func renderNATSConfig(r natsRelease) (string, error) {
	v := r.values.Config
	conf := map[string]any{"server_name": r.fullname() + "-0"}
	if isTrue(v.Monitor.Enabled) {
		conf["http_port"] = v.Monitor.Port
	}
	if v.Cluster.Enabled {
		var routes []string
		for i := range v.Cluster.Replicas {
			routes = append(routes, fmt.Sprintf("nats://%s-%d.%s:%d", r.fullname(), i, r.headlessService(), natsClusterPort))
		}
		conf["cluster"] = map[string]any{"name": r.fullname(), "port": natsClusterPort, "no_advertise": true, "routes": routes}
	}
	if js := v.JetStream; js.Enabled {
		block := map[string]any{"max_memory_store": 0}
		switch fs := js.FileStore; {
		case !isTrue(fs.Enabled):
			block["max_file_store"] = 0
		default:
			block["store_dir"] = fs.Dir
			if fs.MaxSize != nil {
				block["max_file_store"] = "<< " + fs.MaxSize.String() + " >>"
			} else if isTrue(fs.PVC.Enabled) {
				block["max_file_store"] = "<< " + fs.PVC.Size.String() + " >>"
			}
		}
		maps.Copy(block, js.Merge)
		conf["jetstream"] = block
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // "<<", not "\u003c\u003c"
	enc.SetIndent("", "  ")
	if err := enc.Encode(conf); err != nil {
		return "", err
	}
	return regexp.MustCompile(`"<<\s+(.*?)\s+>>"`).ReplaceAllString(b.String(), "$1"), nil
}

// TestNATSServerConfig: the server configuration the chart makes of these values parses with
// the NATS server's own parser (this module's nats-server), which refuses an unknown key in
// the jetstream block: JetStream fsyncs every write (sync_interval: always), stores its files
// in the PVC's directory up to the PVC's size, and serves monitoring on the configured port.
func TestNATSServerConfig(t *testing.T) {
	r := loadNATSRelease(t)
	conf, err := renderNATSConfig(r)
	if err != nil {
		t.Fatal(err)
	}
	var opts server.Options
	if err := opts.ProcessConfigString(conf); err != nil {
		t.Fatalf("the NATS server refuses the configuration:\n%s\n%v", conf, err)
	}
	v := r.values.Config
	if !opts.JetStream {
		t.Error("JetStream is not enabled")
	}
	if !opts.SyncAlways {
		every := "2m0s (the default)"
		if opts.SyncInterval > 0 {
			every = opts.SyncInterval.String()
		}
		t.Errorf("JetStream fsyncs every %s, not every write: set config.jetstream.merge.sync_interval: always", every)
	}
	if opts.StoreDir != v.JetStream.FileStore.Dir {
		t.Errorf("store_dir %q, want the PVC's mount %q", opts.StoreDir, v.JetStream.FileStore.Dir)
	}
	if want := v.JetStream.FileStore.PVC.Size.Value(); opts.JetStreamMaxStore != want {
		t.Errorf("max_file_store %d bytes, want the PVC's size %d", opts.JetStreamMaxStore, want)
	}
	if opts.HTTPPort != v.Monitor.Port {
		t.Errorf("http_port %d, want config.monitor.port %d", opts.HTTPPort, v.Monitor.Port)
	}
	if len(opts.Routes) != natsClusterSize {
		t.Errorf("%d routes, want %d", len(opts.Routes), natsClusterSize)
	}
}

// TestNATSMonitoring: the monitoring port is on (the KEDA scaler and the chart's probes read
// it) and a valid port.
func TestNATSMonitoring(t *testing.T) {
	mon := loadNATSRelease(t).values.Config.Monitor
	if !isTrue(mon.Enabled) {
		t.Errorf("config.monitor.enabled is %v: set it to true (KEDA reads /jsz)", deref(mon.Enabled))
	}
	if mon.Port <= 0 || mon.Port > 65535 {
		t.Errorf("config.monitor.port %d is not a port", mon.Port)
	}
}

// TestNATSResources: requests equal limits for CPU and memory (Guaranteed QoS, GOMAXPROCS from
// the CPU limit, as the chart's README advises) and GOMEMLIMIT below the memory limit with
// headroom.
func TestNATSResources(t *testing.T) {
	c := loadNATSRelease(t).values.Container
	res := c.Merge.Resources
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := res.Requests[name]
		lim, okLim := res.Limits[name]
		if !okReq || !okLim || req.IsZero() || req.Cmp(lim) != 0 {
			t.Errorf("container.merge.resources: %s request %s and limit %s; set both, equal", name, req.String(), lim.String())
		}
	}
	lim, ok := res.Limits[corev1.ResourceMemory]
	if !ok {
		return
	}
	if lim.Format != resource.BinarySI {
		t.Errorf("container.merge.resources: memory %s: use a binary suffix (Mi, Gi)", lim.String())
	}
	soft, err := parseGoMemLimit(c.Env["GOMEMLIMIT"])
	if err != nil {
		t.Errorf("container.env.GOMEMLIMIT %q: %v", c.Env["GOMEMLIMIT"], err)
		return
	}
	if most := int64(float64(lim.Value()) * (1 - memoryHeadroom)); soft > most {
		t.Errorf("container.env.GOMEMLIMIT %s = %d bytes; limits.memory %s: keep it at most %d", c.Env["GOMEMLIMIT"], soft, lim.String(), most)
	}
}

// TestNATSURLNamesRelease: every URL of the workers' NATS_URL is the chart's client Service of
// this release, in its namespace, on the client port.
func TestNATSURLNamesRelease(t *testing.T) {
	r := loadNATSRelease(t)
	m := loadManifests(t)
	for _, dep := range m.deployments {
		for _, ctr := range dep.Spec.Template.Spec.Containers {
			where := fmt.Sprintf("Deployment %s container %s", dep.Name, ctr.Name)
			for raw := range strings.SplitSeq(m.workerConfig(t, dep, ctr).NATS.URL, ",") {
				u, err := url.Parse(strings.TrimSpace(raw))
				if err != nil {
					t.Errorf("%s: NATS_URL %q: %v", where, raw, err)
					continue
				}
				svc, ns, ok := serviceHost(u.Hostname())
				if !ok || svc != r.fullname() || ns != r.namespace {
					t.Errorf("%s: NATS_URL %s is not the Service %s.%s.svc of the helm release %q in namespace %q", where, raw, r.fullname(), r.namespace, r.name, r.namespace)
				}
				if u.Port() != strconv.Itoa(natsClientPort) {
					t.Errorf("%s: NATS_URL %s: port %s, the chart's client port is %d", where, raw, u.Port(), natsClientPort)
				}
				if _, _, err := net.SplitHostPort(u.Host); err != nil {
					t.Errorf("%s: NATS_URL %s: %v", where, raw, err)
				}
			}
		}
	}
}
