// Package deploy_test checks the deployment files: the Kubernetes manifests in kubernetes/
// (decoded strictly with the Kubernetes API types, then checked against the invariants a
// restricted cluster and this worker need) and the container image's Dockerfile and
// .dockerignore.
package deploy_test

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/callagent/resilience/internal/config"
)

// manifestDir holds the manifests, subdirectories (the Secret's template) included, except
// helmDir.
const manifestDir = "kubernetes"

// helmDir (under manifestDir) holds Helm values, which are not Kubernetes objects:
// helm_test.go checks them.
const helmDir = "helm"

// shutdownAfterGrace is the least time terminationGracePeriodSeconds must leave after
// SHUTDOWN_GRACE: once the running contacts are done or released, the worker stops its
// metrics server (up to health.DefaultShutdownTimeout, 5s), flushes queued alerts and drains
// the NATS connection, and SIGKILL must not cut that short.
const shutdownAfterGrace = 10 * time.Second

// memoryHeadroom is the least share of limits.memory left above GOMEMLIMIT, for what the Go
// runtime does not count (stacks of the OS, the binary's mapped pages, fragmentation).
const memoryHeadroom = 0.05

// placeholderPrefix starts every value of a Secret in the repository: real keys are never
// committed.
const placeholderPrefix = "REPLACE_WITH_"

// Paths of the probes, as internal/health serves them.
const (
	livenessPath  = "/healthz"
	readinessPath = "/readyz"
	metricsPath   = "/metrics"
)

// ServiceMonitor is the part of the Prometheus Operator's monitoring.coreos.com/v1
// ServiceMonitor these manifests use; a field outside it fails the strict decoding, so add it
// here (with the CRD's exact name) when the manifest needs one.
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ServiceMonitorSpec `json:"spec"`
}

// ServiceMonitorSpec mirrors the CRD's spec fields used here.
type ServiceMonitorSpec struct {
	JobLabel          string                `json:"jobLabel,omitempty"`
	Selector          metav1.LabelSelector  `json:"selector"`
	NamespaceSelector *NamespaceSelector    `json:"namespaceSelector,omitempty"`
	Endpoints         []ServiceMonitorPoint `json:"endpoints"`
}

// NamespaceSelector mirrors the CRD's namespaceSelector.
type NamespaceSelector struct {
	Any        bool     `json:"any,omitempty"`
	MatchNames []string `json:"matchNames,omitempty"`
}

// ServiceMonitorPoint mirrors the CRD's endpoints[] fields used here.
type ServiceMonitorPoint struct {
	Port          string              `json:"port,omitempty"`
	TargetPort    *intstr.IntOrString `json:"targetPort,omitempty"`
	Path          string              `json:"path,omitempty"`
	Scheme        string              `json:"scheme,omitempty"`
	Interval      string              `json:"interval,omitempty"`
	ScrapeTimeout string              `json:"scrapeTimeout,omitempty"`
	HonorLabels   bool                `json:"honorLabels,omitempty"`
}

// DeepCopyObject makes ServiceMonitor a runtime.Object, so the scheme's strict decoder
// handles it like the built-in kinds.
func (s *ServiceMonitor) DeepCopyObject() runtime.Object {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	var out ServiceMonitor
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return &out
}

var monitoringV1 = schema.GroupVersion{Group: "monitoring.coreos.com", Version: "v1"}

// decoder decodes YAML or JSON into the typed object its apiVersion and kind name, strictly
// as the API server does: unknown fields, fields in the wrong case and duplicate keys are
// errors, and so is a kind that is not registered here.
func decoder(t testing.TB) runtime.Decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	scheme.AddKnownTypes(monitoringV1, &ServiceMonitor{})
	scheme.AddKnownTypes(kedaV1alpha1, &ScaledObject{})
	return serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer()
}

// document is one decoded YAML document.
type document struct {
	where string // file and document number, for messages
	obj   runtime.Object
}

// manifests are every object of manifestDir, by kind.
type manifests struct {
	docs            []document
	namespaces      []*corev1.Namespace
	configMaps      map[string]*corev1.ConfigMap // by namespace/name
	secrets         map[string]*corev1.Secret    // by namespace/name
	deployments     []*appsv1.Deployment
	budgets         []*policyv1.PodDisruptionBudget
	services        []*corev1.Service
	serviceMonitors []*ServiceMonitor
	scaledObjects   []*ScaledObject
}

// loadManifests decodes every document of every .yaml/.yml file under manifestDir (but not
// helmDir) and fails the test on any error.
func loadManifests(t testing.TB) *manifests {
	t.Helper()
	m, err := readManifests(decoder(t), os.DirFS(manifestDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.docs) == 0 {
		t.Fatalf("no manifests in %s", manifestDir)
	}
	return m
}

func readManifests(dec runtime.Decoder, fsys fs.FS) (*manifests, error) {
	m := &manifests{configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
	var errs []error
	err := fs.WalkDir(fsys, ".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && path == helmDir {
			return fs.SkipDir
		}
		if err != nil || d.IsDir() || (filepath.Ext(path) != ".yaml" && filepath.Ext(path) != ".yml") {
			return err
		}
		data, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		docs, err := splitYAML(data)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			return nil
		}
		for i, doc := range docs {
			where := fmt.Sprintf("%s document %d", filepath.Join(manifestDir, path), i+1)
			obj, err := decode(dec, doc)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", where, err))
				continue
			}
			m.add(document{where, obj})
		}
		return nil
	})
	return m, errors.Join(append(errs, err)...)
}

// splitYAML returns the documents of a multi-document YAML file, without those that hold
// only comments.
func splitYAML(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		j, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, err
		}
		if string(bytes.TrimSpace(j)) != "null" {
			docs = append(docs, doc)
		}
	}
}

func decode(dec runtime.Decoder, doc []byte) (runtime.Object, error) {
	obj, _, err := dec.Decode(doc, nil, nil)
	if err != nil {
		return nil, err
	}
	switch obj.(type) {
	case *corev1.Namespace, *corev1.ConfigMap, *corev1.Secret, *corev1.Service,
		*appsv1.Deployment, *policyv1.PodDisruptionBudget, *ServiceMonitor, *ScaledObject:
		return obj, nil
	}
	return nil, fmt.Errorf("%T is decoded but no test checks it: add its invariants to deploy's tests", obj)
}

func (m *manifests) add(d document) {
	m.docs = append(m.docs, d)
	switch o := d.obj.(type) {
	case *corev1.Namespace:
		m.namespaces = append(m.namespaces, o)
	case *corev1.ConfigMap:
		m.configMaps[o.Namespace+"/"+o.Name] = o
	case *corev1.Secret:
		m.secrets[o.Namespace+"/"+o.Name] = o
	case *appsv1.Deployment:
		m.deployments = append(m.deployments, o)
	case *policyv1.PodDisruptionBudget:
		m.budgets = append(m.budgets, o)
	case *corev1.Service:
		m.services = append(m.services, o)
	case *ServiceMonitor:
		m.serviceMonitors = append(m.serviceMonitors, o)
	case *ScaledObject:
		m.scaledObjects = append(m.scaledObjects, o)
	}
}

// TestDecoderIsStrict shows that the decoder the other tests use refuses what the API server
// refuses (or, worse, silently drops): a misspelt field, a field in the wrong case, a
// duplicate key, an unknown kind.
func TestDecoderIsStrict(t *testing.T) {
	dec := decoder(t)
	const good = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  A: b\n"
	if _, err := decode(dec, []byte(good)); err != nil {
		t.Fatalf("a valid ConfigMap: %v", err)
	}
	for name, doc := range map[string]string{
		"unknown field":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndatta:\n  A: b\n",
		"wrong case":     "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  securityContext:\n    runasnonroot: true\n",
		"duplicate key":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  A: b\n  A: c\n",
		"unknown kind":   "apiVersion: v1\nkind: Frobnicator\nmetadata:\n  name: x\n",
		"unchecked kind": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n",
		"monitor field":  "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: x\nspec:\n  selector: {}\n  endpoints:\n    - prot: metrics\n",
	} {
		if _, err := decode(dec, []byte(doc)); err == nil {
			t.Errorf("%s: decoded without an error", name)
		}
	}
}

// TestManifestsDecodeStrictly decodes every document and checks the set is complete.
func TestManifestsDecodeStrictly(t *testing.T) {
	m := loadManifests(t)
	for kind, n := range map[string]int{
		"Deployment": len(m.deployments), "ConfigMap": len(m.configMaps), "Secret": len(m.secrets),
		"PodDisruptionBudget": len(m.budgets), "Service": len(m.services), "ServiceMonitor": len(m.serviceMonitors),
		"ScaledObject": len(m.scaledObjects),
	} {
		if n == 0 {
			t.Errorf("no %s in %s", kind, manifestDir)
		}
	}
}

// TestNamespaceIsRestricted: a declared Namespace enforces the restricted Pod Security
// Standard, and every object lives in a declared namespace.
func TestNamespaceIsRestricted(t *testing.T) {
	m := loadManifests(t)
	declared := map[string]bool{}
	for _, ns := range m.namespaces {
		declared[ns.Name] = true
		if got := ns.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
			t.Errorf("Namespace %s: label pod-security.kubernetes.io/enforce is %q, want restricted", ns.Name, got)
		}
	}
	if len(m.namespaces) == 0 {
		return
	}
	for _, d := range m.docs {
		if _, ok := d.obj.(*corev1.Namespace); ok {
			continue
		}
		meta, err := metaOf(d.obj)
		if err != nil {
			t.Fatal(err)
		}
		if !declared[meta.GetNamespace()] {
			t.Errorf("%s: %s %s is in namespace %q, not one declared here", d.where, d.obj.GetObjectKind().GroupVersionKind().Kind, meta.GetName(), meta.GetNamespace())
		}
	}
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	if sm, ok := obj.(*ServiceMonitor); ok {
		return &sm.ObjectMeta, nil
	}
	o, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no metadata", obj)
	}
	return o, nil
}

// allContainers is every container of a pod: init, regular and ephemeral.
func allContainers(spec *corev1.PodSpec) []corev1.Container {
	out := slices.Concat(spec.InitContainers, spec.Containers)
	for _, e := range spec.EphemeralContainers {
		out = append(out, corev1.Container(e.EphemeralContainerCommon))
	}
	return out
}

// restrictedVolumes are the volume types the restricted Pod Security Standard allows.
var restrictedVolumes = []string{"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}

// volumeType names the one source a volume sets, by its JSON field name.
func volumeType(v corev1.Volume) (string, error) {
	b, err := json.Marshal(v.VolumeSource)
	if err != nil {
		return "", err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return "", err
	}
	if len(fields) != 1 {
		return "", fmt.Errorf("volume %s has %d sources", v.Name, len(fields))
	}
	for k := range fields {
		return k, nil
	}
	panic("unreachable")
}

// TestPodSecurity checks every pod template against the restricted Pod Security Standard and
// this project's stricter rules: each container runs as a non-root user (an explicit
// non-zero UID), with a read-only root file system, no privilege escalation, every capability
// dropped and the RuntimeDefault (or a Localhost) seccomp profile, at the pod or container
// level; no host namespaces, host ports or host paths; no service account token.
func TestPodSecurity(t *testing.T) {
	m := loadManifests(t)
	for _, dep := range m.deployments {
		spec := &dep.Spec.Template.Spec
		name := "Deployment " + dep.Name
		pod := spec.SecurityContext
		if pod == nil {
			pod = &corev1.PodSecurityContext{}
		}
		if spec.HostNetwork || spec.HostPID || spec.HostIPC {
			t.Errorf("%s: uses a host namespace (hostNetwork, hostPID or hostIPC)", name)
		}
		if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
			t.Errorf("%s: automountServiceAccountToken must be false: the worker never calls the Kubernetes API", name)
		}
		if pod.SeccompProfile != nil && !goodSeccomp(pod.SeccompProfile) {
			t.Errorf("%s: pod seccompProfile is %s, want RuntimeDefault or Localhost", name, pod.SeccompProfile.Type)
		}
		if pod.RunAsUser != nil && *pod.RunAsUser == 0 {
			t.Errorf("%s: pod runAsUser is 0 (root)", name)
		}
		for _, v := range spec.Volumes {
			typ, err := volumeType(v)
			if err != nil {
				t.Errorf("%s: %v", name, err)
			} else if !slices.Contains(restrictedVolumes, typ) {
				t.Errorf("%s: volume %s is a %s volume; the restricted profile allows %v", name, v.Name, typ, restrictedVolumes)
			}
		}
		containers := allContainers(spec)
		if len(containers) == 0 {
			t.Errorf("%s: no containers", name)
		}
		for _, c := range containers {
			where := fmt.Sprintf("%s container %s", name, c.Name)
			sc := c.SecurityContext
			if sc == nil {
				sc = &corev1.SecurityContext{}
			}
			if !isTrue(first(sc.RunAsNonRoot, pod.RunAsNonRoot)) {
				t.Errorf("%s: runAsNonRoot is not true (container or pod)", where)
			}
			if uid := first(sc.RunAsUser, pod.RunAsUser); uid == nil || *uid == 0 {
				t.Errorf("%s: runAsUser must be a non-zero UID (container or pod), got %v", where, deref(uid))
			}
			if !isTrue(sc.ReadOnlyRootFilesystem) {
				t.Errorf("%s: readOnlyRootFilesystem is not true", where)
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation must be false", where)
			}
			if isTrue(sc.Privileged) {
				t.Errorf("%s: privileged", where)
			}
			if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
				t.Errorf("%s: capabilities must drop ALL", where)
			} else if len(sc.Capabilities.Add) > 0 {
				t.Errorf("%s: capabilities add %v; the worker needs none", where, sc.Capabilities.Add)
			}
			switch {
			case sc.SeccompProfile != nil && !goodSeccomp(sc.SeccompProfile):
				t.Errorf("%s: seccompProfile is %s, want RuntimeDefault or Localhost", where, sc.SeccompProfile.Type)
			case sc.SeccompProfile == nil && pod.SeccompProfile == nil:
				t.Errorf("%s: no seccompProfile (container or pod); want RuntimeDefault", where)
			}
			for _, p := range c.Ports {
				if p.HostPort != 0 {
					t.Errorf("%s: port %s uses hostPort %d", where, p.Name, p.HostPort)
				}
			}
			if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
				t.Errorf("%s: requests.cpu and requests.memory must be set", where)
			}
		}
	}
}

func goodSeccomp(p *corev1.SeccompProfile) bool {
	return p.Type == corev1.SeccompProfileTypeRuntimeDefault || p.Type == corev1.SeccompProfileTypeLocalhost
}

// first returns the first non-nil pointer: a container's setting overrides the pod's.
func first[T any](ps ...*T) *T {
	for _, p := range ps {
		if p != nil {
			return p
		}
	}
	return nil
}

func isTrue(b *bool) bool { return b != nil && *b }

func deref[T any](p *T) any {
	if p == nil {
		return "unset"
	}
	return *p
}

// TestImageTags: every image names a tag or a digest, never latest.
func TestImageTags(t *testing.T) {
	m := loadManifests(t)
	for _, dep := range m.deployments {
		for _, c := range allContainers(&dep.Spec.Template.Spec) {
			if problem := imageProblem(c.Image); problem != "" {
				t.Errorf("Deployment %s container %s: image %q %s", dep.Name, c.Name, c.Image, problem)
			}
		}
	}
}

func imageProblem(image string) string {
	if strings.Contains(image, "@sha256:") {
		return ""
	}
	name := image[strings.LastIndex(image, "/")+1:]
	i := strings.LastIndex(name, ":")
	switch {
	case image == "":
		return "is empty"
	case i < 0:
		return "has no tag (it means latest): name a release tag or a digest"
	case name[i+1:] == "latest":
		return "is latest: name a release tag or a digest"
	}
	return ""
}

// env is a container's environment as the kubelet builds it.
type envVar struct {
	value  string
	origin string // "literal", "ConfigMap <name>", "Secret <name>", "fieldRef <path>"
	secret bool   // the value comes from a Secret
}

// containerEnv resolves envFrom, then env (which overrides it), against the manifests'
// ConfigMaps and Secrets and the pod's fields.
func (m *manifests) containerEnv(t testing.TB, dep *appsv1.Deployment, c corev1.Container) map[string]envVar {
	t.Helper()
	ns := dep.Namespace
	out := map[string]envVar{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, ok := m.configMaps[ns+"/"+from.ConfigMapRef.Name]
			if !ok {
				t.Fatalf("container %s: envFrom ConfigMap %s is not in %s", c.Name, from.ConfigMapRef.Name, manifestDir)
			}
			for k, v := range cm.Data {
				out[from.Prefix+k] = envVar{v, "ConfigMap " + cm.Name, false}
			}
		case from.SecretRef != nil:
			s, ok := m.secrets[ns+"/"+from.SecretRef.Name]
			if !ok {
				t.Fatalf("container %s: envFrom Secret %s is not in %s (add its template)", c.Name, from.SecretRef.Name, manifestDir)
			}
			for k, v := range secretData(s) {
				out[from.Prefix+k] = envVar{v, "Secret " + s.Name, true}
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = envVar{e.Value, "literal", false}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm, ok := m.configMaps[ns+"/"+ref.Name]
			if !ok {
				t.Fatalf("container %s: %s from ConfigMap %s, which is not in %s", c.Name, e.Name, ref.Name, manifestDir)
			}
			v, ok := cm.Data[ref.Key]
			if !ok {
				t.Fatalf("container %s: %s from key %s, which ConfigMap %s does not have", c.Name, e.Name, ref.Key, ref.Name)
			}
			out[e.Name] = envVar{v, "ConfigMap " + cm.Name, false}
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s, ok := m.secrets[ns+"/"+ref.Name]
			if !ok {
				t.Fatalf("container %s: %s from Secret %s, which is not in %s (add its template)", c.Name, e.Name, ref.Name, manifestDir)
			}
			v, ok := secretData(s)[ref.Key]
			if !ok {
				t.Fatalf("container %s: %s from key %s, which Secret %s's template does not have", c.Name, e.Name, ref.Key, ref.Name)
			}
			out[e.Name] = envVar{v, "Secret " + s.Name, true}
		case e.ValueFrom.FieldRef != nil:
			var v string
			switch p := e.ValueFrom.FieldRef.FieldPath; p {
			case "metadata.name":
				v = dep.Name + "-5d8f9c7b6d-x2k4q" // a pod name as the ReplicaSet makes them
			case "metadata.namespace":
				v = ns
			default:
				t.Fatalf("container %s: %s from fieldRef %s: teach containerEnv that field", c.Name, e.Name, p)
			}
			out[e.Name] = envVar{v, "fieldRef " + e.ValueFrom.FieldRef.FieldPath, false}
		default:
			t.Fatalf("container %s: %s: teach containerEnv this valueFrom", c.Name, e.Name)
		}
	}
	return out
}

// secretData is a Secret's keys and values, stringData over data as the API server merges them.
func secretData(s *corev1.Secret) map[string]string {
	out := map[string]string{}
	for k, v := range s.Data {
		out[k] = string(v)
	}
	for k, v := range s.StringData {
		out[k] = v
	}
	return out
}

// mountedFile is where a path inside a container comes from.
type mountedFile struct {
	mount  corev1.VolumeMount
	volume corev1.Volume
	rel    string // the path inside the volume
}

// findMount returns the volume mount that holds path (the deepest one), if any.
func findMount(spec *corev1.PodSpec, c corev1.Container, path string) (mountedFile, bool) {
	var best mountedFile
	found := false
	for _, vm := range c.VolumeMounts {
		mp := strings.TrimSuffix(vm.MountPath, "/")
		if !strings.HasPrefix(path, mp+"/") || (found && len(mp) <= len(best.mount.MountPath)) {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == vm.Name {
				best, found = mountedFile{vm, v, strings.TrimPrefix(path, mp+"/")}, true
			}
		}
	}
	return best, found
}

// volumeFiles lists the files a Secret or ConfigMap volume shows (path inside the volume to
// content), nil for other volumes. fromSecret is true when every file comes from a Secret.
func (m *manifests) volumeFiles(t testing.TB, ns string, v corev1.Volume) (files map[string]string, fromSecret bool) {
	t.Helper()
	project := func(data map[string]string, items []corev1.KeyToPath, what string) map[string]string {
		if len(items) == 0 {
			return data
		}
		out := map[string]string{}
		for _, it := range items {
			val, ok := data[it.Key]
			if !ok {
				t.Errorf("volume %s: item %s is not a key of %s", v.Name, it.Key, what)
			}
			out[it.Path] = val
		}
		return out
	}
	switch {
	case v.Secret != nil:
		s, ok := m.secrets[ns+"/"+v.Secret.SecretName]
		if !ok {
			t.Fatalf("volume %s: Secret %s is not in %s (add its template)", v.Name, v.Secret.SecretName, manifestDir)
		}
		return project(secretData(s), v.Secret.Items, "Secret "+s.Name), true
	case v.ConfigMap != nil:
		cm, ok := m.configMaps[ns+"/"+v.ConfigMap.Name]
		if !ok {
			t.Fatalf("volume %s: ConfigMap %s is not in %s", v.Name, v.ConfigMap.Name, manifestDir)
		}
		return project(cm.Data, v.ConfigMap.Items, "ConfigMap "+cm.Name), false
	}
	return nil, false
}

// workerConfig loads the worker's configuration from the container's environment exactly as
// the worker does (config.Register + Load), with the files of its Secret and ConfigMap
// volumes written to a temporary directory and the paths into them rewritten. Every setting
// must be valid and every name known.
func (m *manifests) workerConfig(t testing.TB, dep *appsv1.Deployment, c corev1.Container) config.Config {
	t.Helper()
	spec := &dep.Spec.Template.Spec
	env := m.containerEnv(t, dep, c)
	lookup := map[string]string{}
	for name, e := range env {
		v := e.value
		// A path into a volume points into a temporary directory instead, holding the file
		// if the volume has it: the test machine's own files never stand in for the pod's.
		if mf, ok := findMount(spec, c, v); ok {
			files, _ := m.volumeFiles(t, dep.Namespace, mf.volume)
			v = filepath.Join(t.TempDir(), filepath.Base(mf.rel))
			if content, ok := files[mf.rel]; ok {
				if err := os.WriteFile(v, []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		lookup[name] = v
	}
	loader := config.Register(nil, config.ScopeWorker)
	loader.EnvNames = func() []string { return slices.Collect(maps.Keys(lookup)) }
	cfg, err := loader.Load(func(k string) (string, bool) { v, ok := lookup[k]; return v, ok })
	if err != nil {
		t.Fatalf("Deployment %s container %s: the worker would not start with this environment: %v", dep.Name, c.Name, err)
	}
	for _, w := range loader.Warnings() {
		t.Errorf("Deployment %s container %s: %s", dep.Name, c.Name, w)
	}
	return cfg
}

// TestWorkerSettingsAreValid loads every container's environment with the worker's own
// configuration loader: a bad value or a misspelt name fails here, not in the cluster.
func TestWorkerSettingsAreValid(t *testing.T) {
	m := loadManifests(t)
	for _, dep := range m.deployments {
		for _, c := range dep.Spec.Template.Spec.Containers {
			m.workerConfig(t, dep, c)
		}
	}
}

// secretNamePattern matches names that look like credentials, for variables that are not
// the worker's settings (whose own Secret flag decides).
var secretNamePattern = regexp.MustCompile(`KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL`)

// settingsByName is every setting of both binaries.
func settingsByName() map[string]config.Setting {
	out := map[string]config.Setting{}
	for _, s := range config.Settings(config.ScopeAll) {
		out[s.Env] = s
	}
	return out
}

// isSecretName reports whether a variable holds a secret value.
func isSecretName(settings map[string]config.Setting, name string) bool {
	if s, ok := settings[name]; ok {
		return s.Secret
	}
	return secretNamePattern.MatchString(name)
}

// isSecretFileName reports whether a variable names a file that holds a secret: X_FILE of a
// secret X, and credential files such as NATS_CREDS and SHEETS_CREDENTIALS_FILE.
func isSecretFileName(settings map[string]config.Setting, name string) bool {
	if base, ok := strings.CutSuffix(name, "_FILE"); ok && isSecretName(settings, base) {
		return true
	}
	return strings.Contains(name, "CRED")
}

// TestSecretsOnlyFromSecrets: every secret reaches the worker from a Secret, as a variable
// (secretKeyRef or envFrom secretRef) or as a file of a Secret volume named by its X_FILE;
// never as a literal value or from a ConfigMap. The Secrets in the repository hold
// placeholders only, and their volumes are read-only and not world-readable.
func TestSecretsOnlyFromSecrets(t *testing.T) {
	m := loadManifests(t)
	settings := settingsByName()
	for key, cm := range m.configMaps {
		for k := range cm.Data {
			if isSecretName(settings, k) && !isSecretFileName(settings, k) {
				t.Errorf("ConfigMap %s: %s is a secret: put it in a Secret", key, k)
			}
		}
	}
	for key, s := range m.secrets {
		if len(s.Data) > 0 {
			t.Errorf("Secret %s: a template uses stringData placeholders, not data (base64 hides what is committed)", key)
		}
		for k, v := range s.StringData {
			if !strings.HasPrefix(v, placeholderPrefix) {
				t.Errorf("Secret %s: %s is not a placeholder (%s...): never commit a real secret", key, k, placeholderPrefix)
			}
		}
	}
	var checkedFiles int
	for _, dep := range m.deployments {
		spec := &dep.Spec.Template.Spec
		for _, v := range spec.Volumes {
			if v.Secret == nil {
				continue
			}
			if mode := v.Secret.DefaultMode; mode != nil && *mode&0o007 != 0 {
				t.Errorf("Deployment %s: Secret volume %s has mode %#o: not world-readable, please", dep.Name, v.Name, *mode)
			}
		}
		for _, c := range allContainers(spec) {
			where := fmt.Sprintf("Deployment %s container %s", dep.Name, c.Name)
			for _, vm := range c.VolumeMounts {
				if i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == vm.Name }); i >= 0 && spec.Volumes[i].Secret != nil && !vm.ReadOnly {
					t.Errorf("%s: Secret volume %s is mounted read-write", where, vm.Name)
				}
			}
			for name, e := range m.containerEnv(t, dep, c) {
				switch {
				case isSecretFileName(settings, name):
					if e.value == "" {
						continue // unset
					}
					checkedFiles++
					mf, ok := findMount(spec, c, e.value)
					if !ok {
						t.Errorf("%s: %s=%s is not in a mounted volume: mount the Secret that holds it", where, name, e.value)
						continue
					}
					files, fromSecret := m.volumeFiles(t, dep.Namespace, mf.volume)
					if !fromSecret {
						t.Errorf("%s: %s=%s is in volume %s, which is not a Secret", where, name, e.value, mf.volume.Name)
					} else if _, ok := files[mf.rel]; !ok {
						t.Errorf("%s: %s=%s: volume %s has no file %s (the Secret's keys: %v)", where, name, e.value, mf.volume.Name, mf.rel, slices.Sorted(maps.Keys(files)))
					}
				case isSecretName(settings, name) && !e.secret:
					t.Errorf("%s: %s comes from %s: a secret comes from a Secret (secretKeyRef, or a file named by %s_FILE)", where, name, e.origin, name)
				}
			}
		}
	}
	if checkedFiles == 0 && len(m.deployments) > 0 {
		t.Error("no secret reaches the worker from a Secret: the keys are missing")
	}
}

// metricsPort is the port of METRICS_ADDR in cfg, which must listen on every interface (the
// kubelet's probes and Prometheus come from outside the pod).
func metricsPort(t testing.TB, cfg config.Config) int32 {
	t.Helper()
	host, port, err := net.SplitHostPort(cfg.Metrics.Addr)
	if err != nil {
		t.Fatalf("METRICS_ADDR %q: %v (the probes need the endpoint)", cfg.Metrics.Addr, err)
	}
	if host != "" && host != "0.0.0.0" && host != "::" {
		t.Errorf("METRICS_ADDR %q listens on %s only: the probes and Prometheus cannot reach it", cfg.Metrics.Addr, host)
	}
	n, err := strconv.ParseInt(port, 10, 32)
	if err != nil || n <= 0 {
		t.Fatalf("METRICS_ADDR %q: port must be a fixed number", cfg.Metrics.Addr)
	}
	return int32(n)
}

// containerPort resolves a probe's or Service's port (number or name) to a declared port of
// c, or returns an error.
func containerPort(c corev1.Container, port intstr.IntOrString) (corev1.ContainerPort, error) {
	for _, p := range c.Ports {
		if (port.Type == intstr.String && p.Name == port.StrVal) || (port.Type == intstr.Int && p.ContainerPort == port.IntVal) {
			return p, nil
		}
	}
	return corev1.ContainerPort{}, fmt.Errorf("port %s is not a declared port of container %s", port.String(), c.Name)
}

// TestProbes: a startup probe, a readiness probe on /readyz and a liveness probe on /healthz,
// each an HTTP GET on a declared container port that is METRICS_ADDR's.
func TestProbes(t *testing.T) {
	m := loadManifests(t)
	for _, dep := range m.deployments {
		for _, c := range dep.Spec.Template.Spec.Containers {
			where := fmt.Sprintf("Deployment %s container %s", dep.Name, c.Name)
			want := metricsPort(t, m.workerConfig(t, dep, c))
			for _, p := range []struct {
				kind  string
				probe *corev1.Probe
				paths []string
			}{
				{"startupProbe", c.StartupProbe, []string{livenessPath, readinessPath}},
				{"readinessProbe", c.ReadinessProbe, []string{readinessPath}},
				{"livenessProbe", c.LivenessProbe, []string{livenessPath}},
			} {
				if p.probe == nil || p.probe.HTTPGet == nil {
					t.Errorf("%s: no %s with httpGet", where, p.kind)
					continue
				}
				if !slices.Contains(p.paths, p.probe.HTTPGet.Path) {
					t.Errorf("%s: %s path is %q, want one of %v", where, p.kind, p.probe.HTTPGet.Path, p.paths)
				}
				port, err := containerPort(c, p.probe.HTTPGet.Port)
				if err != nil {
					t.Errorf("%s: %s: %v", where, p.kind, err)
				} else if port.ContainerPort != want {
					t.Errorf("%s: %s probes port %d, but METRICS_ADDR listens on %d", where, p.kind, port.ContainerPort, want)
				}
			}
		}
	}
}

// parseGoMemLimit parses GOMEMLIMIT as the Go runtime does: a whole number of bytes with an
// optional unit B, KiB, MiB, GiB or TiB.
func parseGoMemLimit(s string) (int64, error) {
	units := []struct {
		suffix string
		factor int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	factor := int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, factor = rest, u.factor
			break
		}
	}
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("not a byte count (digits and an optional unit B, KiB, MiB, GiB or TiB)")
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > (1<<63-1)/factor {
		return 0, fmt.Errorf("out of range")
	}
	return n * factor, nil
}

// TestGoMemLimit: every container sets limits.memory and GOMEMLIMIT below it, with headroom.
func TestGoMemLimit(t *testing.T) {
	m := loadManifests(t)
	for _, dep := range m.deployments {
		for _, c := range dep.Spec.Template.Spec.Containers {
			where := fmt.Sprintf("Deployment %s container %s", dep.Name, c.Name)
			limit, ok := c.Resources.Limits[corev1.ResourceMemory]
			if !ok || limit.IsZero() {
				t.Errorf("%s: no limits.memory", where)
				continue
			}
			if req, ok := c.Resources.Requests[corev1.ResourceMemory]; ok && req.Cmp(limit) > 0 {
				t.Errorf("%s: requests.memory %s is above limits.memory %s", where, req.String(), limit.String())
			}
			e, ok := m.containerEnv(t, dep, c)["GOMEMLIMIT"]
			if !ok {
				t.Errorf("%s: no GOMEMLIMIT: set it below limits.memory %s", where, limit.String())
				continue
			}
			soft, err := parseGoMemLimit(e.value)
			if err != nil {
				t.Errorf("%s: GOMEMLIMIT %q: %v", where, e.value, err)
				continue
			}
			hard := limit.Value()
			if most := int64(float64(hard) * (1 - memoryHeadroom)); soft > most {
				t.Errorf("%s: GOMEMLIMIT %s = %d bytes; limits.memory %s = %d bytes: keep it at most %d (%.0f%% headroom)",
					where, e.value, soft, limit.String(), hard, most, memoryHeadroom*100)
			}
		}
	}
}

// TestTerminationGrace: Kubernetes waits longer than the worker's shutdown (SHUTDOWN_GRACE as
// the container's environment sets it, else its default, plus the rest of the shutdown)
// before SIGKILL.
func TestTerminationGrace(t *testing.T) {
	m := loadManifests(t)
	for _, dep := range m.deployments {
		spec := &dep.Spec.Template.Spec
		if spec.TerminationGracePeriodSeconds == nil {
			t.Errorf("Deployment %s: terminationGracePeriodSeconds is unset (30s by default): set it above SHUTDOWN_GRACE", dep.Name)
			continue
		}
		period := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
		for _, c := range spec.Containers {
			grace := m.workerConfig(t, dep, c).Worker.ShutdownGrace
			if period < grace+shutdownAfterGrace {
				t.Errorf("Deployment %s container %s: terminationGracePeriodSeconds %v leaves less than %v after SHUTDOWN_GRACE %v",
					dep.Name, c.Name, period, shutdownAfterGrace, grace)
			}
		}
	}
}

// TestDisruptionBudget: each Deployment runs at least two replicas (spec.replicas and, when a
// ScaledObject scales it, every count between its minimum and maximum), its selector matches
// its pods, and one PodDisruptionBudget covers them that lets one (but not every) pod go at a
// time at each of those counts.
func TestDisruptionBudget(t *testing.T) {
	m := loadManifests(t)
	for _, dep := range m.deployments {
		podLabels := labels.Set(dep.Spec.Template.Labels)
		sel, err := metav1.LabelSelectorAsSelector(dep.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(podLabels) {
			t.Errorf("Deployment %s: selector %v does not match its pod labels %v (%v)", dep.Name, dep.Spec.Selector, podLabels, err)
		}
		counts := m.replicaCounts(t, dep)
		for _, n := range counts {
			if n < 2 {
				t.Errorf("Deployment %s: runs at %d replica(s) (spec.replicas, or its ScaledObject's bounds %v); a disruption budget needs at least 2", dep.Name, n, counts)
			}
		}
		var covering []*policyv1.PodDisruptionBudget
		for _, pdb := range m.budgets {
			sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
			if err != nil {
				t.Errorf("PodDisruptionBudget %s: %v", pdb.Name, err)
				continue
			}
			if pdb.Namespace == dep.Namespace && !sel.Empty() && sel.Matches(podLabels) {
				covering = append(covering, pdb)
			}
		}
		if len(covering) != 1 {
			t.Errorf("Deployment %s: %d PodDisruptionBudgets select its pods %v, want 1", dep.Name, len(covering), podLabels)
			continue
		}
		pdb := covering[0]
		// Percentages scale with the count: check every count the Deployment may run at.
		lo, hi := slices.Min(counts), slices.Max(counts)
		for n := lo; n <= hi; n++ {
			allowed, err := budgetAllows(pdb.Spec.MaxUnavailable, pdb.Spec.MinAvailable, int(n))
			if err != nil {
				t.Errorf("PodDisruptionBudget %s: %v", pdb.Name, err)
				break
			}
			if n >= 2 && (allowed < 1 || allowed >= int(n)) {
				t.Errorf("PodDisruptionBudget %s: allows %d of %d pods to go at once; want at least 1 (drains must proceed) and fewer than all", pdb.Name, allowed, n)
			}
		}
	}
}

// alertRulesJob is the Prometheus job deploy/prometheus/rules.yml's alerts match.
const alertRulesJob = "worker"

// TestServiceAndMonitor: a Service selects each Deployment's pods and its metrics port
// targets the containers' metrics port (METRICS_ADDR's); a ServiceMonitor selects that
// Service and scrapes that port's /metrics.
func TestServiceAndMonitor(t *testing.T) {
	m := loadManifests(t)
	for _, dep := range m.deployments {
		podLabels := labels.Set(dep.Spec.Template.Labels)
		if len(dep.Spec.Template.Spec.Containers) == 0 {
			t.Errorf("Deployment %s: no containers", dep.Name)
			continue
		}
		c := dep.Spec.Template.Spec.Containers[0]
		want := metricsPort(t, m.workerConfig(t, dep, c))
		var svc *corev1.Service
		var svcPort corev1.ServicePort
		for _, s := range m.services {
			if s.Namespace != dep.Namespace || len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) {
				continue
			}
			for _, p := range s.Spec.Ports {
				cp, err := containerPort(c, p.TargetPort)
				if err == nil && cp.ContainerPort == want && p.TargetPort.Type == intstr.String {
					svc, svcPort = s, p
				}
			}
		}
		if svc == nil {
			t.Errorf("Deployment %s: no Service selects its pods %v with a port whose targetPort names the container port of METRICS_ADDR (%d)", dep.Name, podLabels, want)
			continue
		}
		if svcPort.Name == "" {
			t.Errorf("Service %s: the metrics port has no name for the ServiceMonitor to use", svc.Name)
		}
		scraped := false
		for _, sm := range m.serviceMonitors {
			if !monitorsNamespace(sm, svc.Namespace) {
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
			if err != nil {
				t.Errorf("ServiceMonitor %s: %v", sm.Name, err)
				continue
			}
			if sel.Empty() || !sel.Matches(labels.Set(svc.Labels)) {
				continue
			}
			for _, ep := range sm.Spec.Endpoints {
				if ep.Port != svcPort.Name {
					continue
				}
				if ep.Path != "" && ep.Path != metricsPath {
					t.Errorf("ServiceMonitor %s: scrapes %s, want %s", sm.Name, ep.Path, metricsPath)
					continue
				}
				if err := scrapeTimingProblem(ep); err != nil {
					t.Errorf("ServiceMonitor %s: %v", sm.Name, err)
					continue
				}
				// deploy/prometheus/rules.yml matches job="worker": the Operator names the job
				// after the Service, unless jobLabel names a Service label to take it from.
				if job := svc.Labels[sm.Spec.JobLabel]; sm.Spec.JobLabel == "" || job != alertRulesJob {
					t.Errorf("ServiceMonitor %s: the scrape job would be %q; the alert rules match job=%q (set jobLabel to a Service label whose value is %q)",
						sm.Name, cmp.Or(job, svc.Name), alertRulesJob, alertRulesJob)
					continue
				}
				scraped = true
			}
		}
		if !scraped {
			t.Errorf("Service %s: no ServiceMonitor selects its labels %v and scrapes port %q at %s", svc.Name, svc.Labels, svcPort.Name, metricsPath)
		}
	}
}

func monitorsNamespace(sm *ServiceMonitor, ns string) bool {
	if sm.Spec.NamespaceSelector == nil || (!sm.Spec.NamespaceSelector.Any && len(sm.Spec.NamespaceSelector.MatchNames) == 0) {
		return sm.Namespace == ns
	}
	return sm.Spec.NamespaceSelector.Any || slices.Contains(sm.Spec.NamespaceSelector.MatchNames, ns)
}

// scrapeTimingProblem checks the endpoint's durations parse and the timeout is within the
// interval (Prometheus refuses the configuration otherwise).
func scrapeTimingProblem(ep ServiceMonitorPoint) error {
	if ep.Interval == "" || ep.ScrapeTimeout == "" {
		return nil
	}
	interval, err1 := time.ParseDuration(ep.Interval)
	timeout, err2 := time.ParseDuration(ep.ScrapeTimeout)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	if timeout > interval {
		return fmt.Errorf("scrapeTimeout %s is longer than interval %s", ep.ScrapeTimeout, ep.Interval)
	}
	return nil
}

// TestQuantitiesAreCanonical guards against a classic: "512M" is 512 000 000 bytes, not
// 512 MiB; limits here use binary suffixes so GOMEMLIMIT's MiB compares as written.
func TestQuantitiesAreCanonical(t *testing.T) {
	m := loadManifests(t)
	for _, dep := range m.deployments {
		for _, c := range allContainers(&dep.Spec.Template.Spec) {
			for _, list := range []corev1.ResourceList{c.Resources.Requests, c.Resources.Limits} {
				if q, ok := list[corev1.ResourceMemory]; ok && q.Format != resource.BinarySI {
					t.Errorf("Deployment %s container %s: memory %s: use a binary suffix (Mi, Gi)", dep.Name, c.Name, q.String())
				}
			}
		}
	}
}
