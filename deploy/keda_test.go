package deploy_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/callagent/resilience/internal/config"
)

// ScaledObject is the part of KEDA's keda.sh/v1alpha1 ScaledObject (apis/keda/v1alpha1 of
// github.com/kedacore/keda/v2, mirrored rather than imported: the module is huge) these
// manifests use; a field outside it fails the strict decoding, so add it here (with the CRD's
// exact name) when the manifest needs one.
type ScaledObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ScaledObjectSpec `json:"spec"`
}

// ScaledObjectSpec mirrors the CRD's spec fields used here.
type ScaledObjectSpec struct {
	ScaleTargetRef   *ScaleTarget    `json:"scaleTargetRef"`
	PollingInterval  *int32          `json:"pollingInterval,omitempty"`
	CooldownPeriod   *int32          `json:"cooldownPeriod,omitempty"`
	IdleReplicaCount *int32          `json:"idleReplicaCount,omitempty"`
	MinReplicaCount  *int32          `json:"minReplicaCount,omitempty"`
	MaxReplicaCount  *int32          `json:"maxReplicaCount,omitempty"`
	Advanced         *AdvancedConfig `json:"advanced,omitempty"`
	Triggers         []ScaleTrigger  `json:"triggers"`
}

// ScaleTarget mirrors the CRD's scaleTargetRef.
type ScaleTarget struct {
	Name                   string `json:"name"`
	APIVersion             string `json:"apiVersion,omitempty"`
	Kind                   string `json:"kind,omitempty"`
	EnvSourceContainerName string `json:"envSourceContainerName,omitempty"`
}

// AdvancedConfig mirrors the CRD's advanced section; the HPA behavior is the autoscaling/v2
// type KEDA copies into the HPA it creates.
type AdvancedConfig struct {
	HorizontalPodAutoscalerConfig *struct {
		Name     string                                         `json:"name,omitempty"`
		Behavior *autoscalingv2.HorizontalPodAutoscalerBehavior `json:"behavior,omitempty"`
	} `json:"horizontalPodAutoscalerConfig,omitempty"`
	RestoreToOriginalReplicaCount bool `json:"restoreToOriginalReplicaCount,omitempty"`
}

// ScaleTrigger mirrors the CRD's triggers[] fields used here.
type ScaleTrigger struct {
	Type       string                         `json:"type"`
	Name       string                         `json:"name,omitempty"`
	Metadata   map[string]string              `json:"metadata"`
	MetricType autoscalingv2.MetricTargetType `json:"metricType,omitempty"`
}

// DeepCopyObject makes ScaledObject a runtime.Object, so the scheme's strict decoder handles
// it like the built-in kinds.
func (s *ScaledObject) DeepCopyObject() runtime.Object {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	var out ScaledObject
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return &out
}

var kedaV1alpha1 = schema.GroupVersion{Group: "keda.sh", Version: "v1alpha1"}

// natsJetStreamTrigger is the KEDA scaler of a JetStream consumer's lag
// (https://keda.sh/docs/latest/scalers/nats-jetstream/).
const natsJetStreamTrigger = "nats-jetstream"

// natsJetStreamMetadata is every metadata key the nats-jetstream scaler reads (KEDA's
// pkg/scalers/nats_jetstream_scaler.go); KEDA ignores others, so a misspelt key would silently
// fall back to a default.
var natsJetStreamMetadata = []string{
	"natsServerMonitoringEndpoint", "account", "accountID", "stream", "consumer",
	"lagThreshold", "activationLagThreshold", "useHttps",
}

// minFleet is the fewest workers autoscaling may leave: with the PodDisruptionBudget's
// maxUnavailable 1 a drain then always leaves one, and the fleet's other duties (alerts, the
// MAX_DELIVERIES sweeper, breaker reports) never stop with an empty queue.
const minFleet = 2

// scaledObjectFor returns the ScaledObject that scales dep, if any, failing the test when more
// than one does (the HPAs would fight).
func (m *manifests) scaledObjectFor(t testing.TB, dep *appsv1.Deployment) *ScaledObject {
	t.Helper()
	var found []*ScaledObject
	for _, so := range m.scaledObjects {
		if ref := so.Spec.ScaleTargetRef; ref != nil && so.Namespace == dep.Namespace && ref.Name == dep.Name && targetsDeployment(ref) {
			found = append(found, so)
		}
	}
	if len(found) > 1 {
		t.Fatalf("Deployment %s: %d ScaledObjects scale it; KEDA allows one", dep.Name, len(found))
	}
	if len(found) == 0 {
		return nil
	}
	return found[0]
}

// targetsDeployment: scaleTargetRef's kind and apiVersion default to Deployment and apps/v1.
func targetsDeployment(ref *ScaleTarget) bool {
	return (ref.Kind == "" || ref.Kind == "Deployment") && (ref.APIVersion == "" || ref.APIVersion == "apps/v1")
}

// replicaCounts are the replica counts a Deployment runs at: spec.replicas (the count without
// autoscaling, 1 when unset) and, when a ScaledObject scales it, its minimum and maximum.
func (m *manifests) replicaCounts(t testing.TB, dep *appsv1.Deployment) []int32 {
	t.Helper()
	var counts []int32
	so := m.scaledObjectFor(t, dep)
	switch {
	case dep.Spec.Replicas != nil:
		counts = append(counts, *dep.Spec.Replicas)
	case so == nil:
		counts = append(counts, 1)
	}
	if so != nil {
		lo, hi := replicaBounds(so)
		counts = append(counts, lo, hi)
	}
	return counts
}

// replicaBounds are the HPA's bounds as KEDA sets them: minReplicaCount (0 and unset mean 1
// for the HPA; KEDA itself scales to zero) and maxReplicaCount (100 when unset).
func replicaBounds(so *ScaledObject) (lo, hi int32) {
	lo, hi = 1, 100
	if p := so.Spec.MinReplicaCount; p != nil && *p > 0 {
		lo = *p
	}
	if p := so.Spec.MaxReplicaCount; p != nil {
		hi = *p
	}
	return lo, hi
}

// TestScaledObjectTarget: every ScaledObject scales a Deployment of these manifests, in its own
// namespace (KEDA looks nowhere else), and reads its settings from the worker container.
func TestScaledObjectTarget(t *testing.T) {
	m := loadManifests(t)
	for _, so := range m.scaledObjects {
		ref := so.Spec.ScaleTargetRef
		if ref == nil || ref.Name == "" {
			t.Errorf("ScaledObject %s: no scaleTargetRef.name", so.Name)
			continue
		}
		if !targetsDeployment(ref) {
			t.Errorf("ScaledObject %s: scales %s %s; only Deployments (apps/v1) are checked here", so.Name, ref.APIVersion, ref.Kind)
			continue
		}
		i := slices.IndexFunc(m.deployments, func(d *appsv1.Deployment) bool { return d.Namespace == so.Namespace && d.Name == ref.Name })
		if i < 0 {
			t.Errorf("ScaledObject %s/%s: scales Deployment %s, which is not in namespace %s here", so.Namespace, so.Name, ref.Name, so.Namespace)
			continue
		}
		dep := m.deployments[i]
		m.scaledObjectFor(t, dep) // one per Deployment
		if c := ref.EnvSourceContainerName; c != "" && !slices.ContainsFunc(dep.Spec.Template.Spec.Containers, func(x corev1.Container) bool { return x.Name == c }) {
			t.Errorf("ScaledObject %s: envSourceContainerName %s is not a container of Deployment %s", so.Name, c, dep.Name)
		}
	}
}

// TestScaledObjectReplicas: at least minFleet and at most maxReplicaCount workers, the
// Deployment's own count in between, never scaled to zero; and MAX_ACK_PENDING lets every one
// of the most replicas fill its WORKER_CONCURRENCY slots.
func TestScaledObjectReplicas(t *testing.T) {
	m := loadManifests(t)
	for _, dep := range m.deployments {
		so := m.scaledObjectFor(t, dep)
		if so == nil {
			continue
		}
		where := "ScaledObject " + so.Name
		if so.Spec.MinReplicaCount == nil || so.Spec.MaxReplicaCount == nil {
			t.Errorf("%s: set minReplicaCount and maxReplicaCount (KEDA's defaults are 0 and 100)", where)
			continue
		}
		lo, hi := *so.Spec.MinReplicaCount, *so.Spec.MaxReplicaCount
		if lo < minFleet {
			t.Errorf("%s: minReplicaCount %d; want at least %d (the disruption budget, and alerts and sweeps go on with an empty queue)", where, lo, minFleet)
		}
		if so.Spec.IdleReplicaCount != nil {
			t.Errorf("%s: idleReplicaCount %d scales the workers to zero when idle: alerts would stop", where, *so.Spec.IdleReplicaCount)
		}
		if lo > hi {
			t.Errorf("%s: minReplicaCount %d > maxReplicaCount %d", where, lo, hi)
		}
		if r := dep.Spec.Replicas; r != nil && *r > hi {
			t.Errorf("%s: maxReplicaCount %d is below Deployment %s's replicas %d: KEDA would scale it down at once", where, hi, dep.Name, *r)
		}
		if len(dep.Spec.Template.Spec.Containers) == 0 {
			continue
		}
		cfg := m.workerConfig(t, dep, dep.Spec.Template.Spec.Containers[0])
		if need := int(hi) * cfg.Worker.Concurrency; cfg.Topology.MaxAckPending < need {
			t.Errorf("%s: MAX_ACK_PENDING %d < maxReplicaCount %d x WORKER_CONCURRENCY %d = %d: the workers past %d get no contacts while the backlog keeps them up",
				where, cfg.Topology.MaxAckPending, hi, cfg.Worker.Concurrency, need, cfg.Topology.MaxAckPending/cfg.Worker.Concurrency)
		}
	}
}

// TestScaledObjectCooldown: scaling down is slower than a worker's drain. KEDA's cooldownPeriod
// (which only governs scaling to zero) and the HPA's scale-down stabilization window exceed
// terminationGracePeriodSeconds, and each scale-down step takes at most as many pods as the
// disruption budget lets go at once (1), no more often than one drain lasts.
func TestScaledObjectCooldown(t *testing.T) {
	m := loadManifests(t)
	for _, dep := range m.deployments {
		so := m.scaledObjectFor(t, dep)
		if so == nil {
			continue
		}
		where := "ScaledObject " + so.Name
		grace := dep.Spec.Template.Spec.TerminationGracePeriodSeconds
		if grace == nil {
			t.Errorf("Deployment %s: terminationGracePeriodSeconds is unset", dep.Name)
			continue
		}
		drain := time.Duration(*grace) * time.Second
		if p := so.Spec.CooldownPeriod; p == nil || time.Duration(*p)*time.Second <= drain {
			t.Errorf("%s: cooldownPeriod %v must be longer than the drain (terminationGracePeriodSeconds %v)", where, deref(p), drain)
		}
		if p := so.Spec.PollingInterval; p != nil && *p <= 0 {
			t.Errorf("%s: pollingInterval %d must be positive", where, *p)
		}
		var down *autoscalingv2.HPAScalingRules
		if a := so.Spec.Advanced; a != nil && a.HorizontalPodAutoscalerConfig != nil && a.HorizontalPodAutoscalerConfig.Behavior != nil {
			down = a.HorizontalPodAutoscalerConfig.Behavior.ScaleDown
		}
		if down == nil {
			t.Errorf("%s: no advanced.horizontalPodAutoscalerConfig.behavior.scaleDown: the HPA's default takes every surplus pod at once", where)
			continue
		}
		if w := down.StabilizationWindowSeconds; w == nil || time.Duration(*w)*time.Second <= drain {
			t.Errorf("%s: scaleDown.stabilizationWindowSeconds %v must be longer than the drain (%v)", where, deref(w), drain)
		}
		if down.SelectPolicy != nil && *down.SelectPolicy == autoscalingv2.DisabledPolicySelect {
			continue
		}
		if len(down.Policies) == 0 {
			t.Errorf("%s: scaleDown has no policies: the HPA's default (100%% every 15s) applies", where)
		}
		for _, p := range down.Policies {
			if p.Type != autoscalingv2.PodsScalingPolicy || p.Value > 1 {
				t.Errorf("%s: scaleDown policy %s %d: take at most 1 pod per step (type Pods), as the disruption budget does", where, p.Type, p.Value)
			}
			if time.Duration(p.PeriodSeconds)*time.Second < drain {
				t.Errorf("%s: scaleDown policy period %ds is shorter than the drain (%v): drains would overlap", where, p.PeriodSeconds, drain)
			}
		}
	}
}

// TestScaledObjectTrigger: the nats-jetstream trigger reads the consumer the workers share
// (CONTACTS_STREAM, CONSUMER_NAME as the worker's configuration loader resolves them), in the
// default account, from the monitoring port of the NATS release NATS_URL names (its headless
// service, through which the scaler finds the consumer's leader), and targets at least
// WORKER_CONCURRENCY of lag per replica.
func TestScaledObjectTrigger(t *testing.T) {
	m := loadManifests(t)
	rel := loadNATSRelease(t)
	for _, dep := range m.deployments {
		so := m.scaledObjectFor(t, dep)
		if so == nil || len(dep.Spec.Template.Spec.Containers) == 0 {
			continue
		}
		where := "ScaledObject " + so.Name
		cfg := m.workerConfig(t, dep, dep.Spec.Template.Spec.Containers[0])
		var checked int
		for i, tr := range so.Spec.Triggers {
			if tr.Type != natsJetStreamTrigger {
				t.Errorf("%s trigger %d: type %q; only %s is checked here", where, i, tr.Type, natsJetStreamTrigger)
				continue
			}
			checked++
			checkNATSJetStreamTrigger(t, fmt.Sprintf("%s trigger %d", where, i), tr, cfg, rel)
		}
		if checked == 0 {
			t.Errorf("%s: no %s trigger", where, natsJetStreamTrigger)
		}
	}
}

func checkNATSJetStreamTrigger(t *testing.T, where string, tr ScaleTrigger, cfg config.Config, rel natsRelease) {
	t.Helper()
	md := tr.Metadata
	for _, k := range slices.Sorted(maps.Keys(md)) {
		if !slices.Contains(natsJetStreamMetadata, k) {
			t.Errorf("%s: metadata %s is not a key of the scaler (KEDA ignores it): one of %v", where, k, natsJetStreamMetadata)
		}
	}
	if tr.MetricType != "" && tr.MetricType != autoscalingv2.AverageValueMetricType {
		t.Errorf("%s: metricType %s; lagThreshold is a target per replica only with AverageValue (the default)", where, tr.MetricType)
	}
	if md["stream"] != cfg.Topology.ContactsStream {
		t.Errorf("%s: stream %q, but the workers read CONTACTS_STREAM %q", where, md["stream"], cfg.Topology.ContactsStream)
	}
	if md["consumer"] != cfg.Topology.Consumer {
		t.Errorf("%s: consumer %q, but the workers share CONSUMER_NAME %q", where, md["consumer"], cfg.Topology.Consumer)
	}
	// Without credentials the workers are in the server's default (global) account, which the
	// chart's values leave the only one.
	switch {
	case md["account"] == "" && md["accountID"] == "":
		t.Errorf("%s: no account", where)
	case cfg.NATS.CredsFile == "" && md["account"] != "$G":
		t.Errorf("%s: account %q; the workers connect without NATS_CREDS, so their account is $G", where, md["account"])
	}
	lag, err := strconv.ParseInt(md["lagThreshold"], 10, 64)
	switch {
	case err != nil || lag <= 0:
		t.Errorf("%s: lagThreshold %q must be a positive whole number (KEDA's default is 10)", where, md["lagThreshold"])
	case lag < int64(cfg.Worker.Concurrency):
		t.Errorf("%s: lagThreshold %d < WORKER_CONCURRENCY %d: the lag counts contacts in flight, so the HPA would keep workers with idle slots",
			where, lag, cfg.Worker.Concurrency)
	}
	if v, ok := md["activationLagThreshold"]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err != nil || n < 0 {
			t.Errorf("%s: activationLagThreshold %q must be a whole number >= 0", where, v)
		}
	}
	https := false
	if v, ok := md["useHttps"]; ok {
		if https, err = strconv.ParseBool(v); err != nil {
			t.Errorf("%s: useHttps %q is not a boolean", where, v)
		}
	}
	if https {
		t.Errorf("%s: useHttps is true, but the chart's monitoring port serves plain HTTP (config.monitor.tls is not enabled)", where)
	}
	host, port, err := net.SplitHostPort(md["natsServerMonitoringEndpoint"])
	if err != nil {
		t.Errorf("%s: natsServerMonitoringEndpoint %q: want host:port (%v)", where, md["natsServerMonitoringEndpoint"], err)
		return
	}
	if want := strconv.Itoa(rel.values.Config.Monitor.Port); port != want {
		t.Errorf("%s: natsServerMonitoringEndpoint port %s, but the chart's monitoring port is %s", where, port, want)
	}
	svc, ns, ok := serviceHost(host)
	if !ok || !strings.HasSuffix(host, ".svc.cluster.local") {
		t.Errorf("%s: natsServerMonitoringEndpoint host %q: want <service>.<namespace>.svc.cluster.local (the scaler prefixes server names to it)", where, host)
		return
	}
	if ns != rel.namespace {
		t.Errorf("%s: natsServerMonitoringEndpoint is in namespace %q, but NATS is installed in %q", where, ns, rel.namespace)
	}
	if want := rel.headlessService(); svc != want {
		t.Errorf("%s: natsServerMonitoringEndpoint names service %q; want the chart's headless service %q (only it resolves <server>.%s)", where, svc, want, want)
	}
}

// serviceHost splits a cluster DNS name of a Service, <service>.<namespace>[.svc[.cluster.local]].
func serviceHost(host string) (svc, ns string, ok bool) {
	labels := strings.Split(host, ".")
	if len(labels) < 2 || labels[0] == "" || labels[1] == "" {
		return "", "", false
	}
	switch rest := strings.Join(labels[2:], "."); rest {
	case "", "svc", "svc.cluster.local":
		return labels[0], labels[1], true
	}
	return "", "", false
}

// TestScaledObjectDecodesStrictly: a misspelt field of the ScaledObject fails, like one of the
// built-in kinds.
func TestScaledObjectDecodesStrictly(t *testing.T) {
	dec := decoder(t)
	const good = "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\nmetadata:\n  name: x\nspec:\n  scaleTargetRef:\n    name: w\n  triggers:\n    - type: nats-jetstream\n      metadata:\n        stream: S\n"
	if _, err := decode(dec, []byte(good)); err != nil {
		t.Fatalf("a valid ScaledObject: %v", err)
	}
	for name, doc := range map[string]string{
		"spec field":     strings.Replace(good, "scaleTargetRef", "scaleTargetRf", 1),
		"trigger field":  strings.Replace(good, "      metadata:", "      metdata:", 1),
		"behavior field": strings.Replace(good, "  triggers:", "  advanced:\n    horizontalPodAutoscalerConfig:\n      behavior:\n        scaleDown:\n          stabilizationWindow: 300\n  triggers:", 1),
	} {
		if _, err := decode(dec, []byte(doc)); err == nil {
			t.Errorf("%s: decoded without an error", name)
		}
	}
}

// budgetAllows is how many of n pods a PodDisruptionBudget lets go at once, its percentages
// scaled as the eviction API does (rounding up).
func budgetAllows(maxUnavailable, minAvailable *intstr.IntOrString, n int) (int, error) {
	switch {
	case maxUnavailable != nil && minAvailable == nil:
		return intstr.GetScaledValueFromIntOrPercent(maxUnavailable, n, true)
	case minAvailable != nil && maxUnavailable == nil:
		v, err := intstr.GetScaledValueFromIntOrPercent(minAvailable, n, true)
		return n - v, err
	}
	return 0, fmt.Errorf("set exactly one of minAvailable and maxUnavailable")
}
