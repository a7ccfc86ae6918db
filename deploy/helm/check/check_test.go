// Package check renders the Helm chart (deploy/helm/parley) with helm
// template and decodes every manifest with the official Kubernetes API
// types, strictly: a field the API does not have, a value of the wrong
// type or a kind the check does not know fails the test. It then checks
// what the chart promises: members and webhook Services, probes, the 30 s
// grace, the disruption budget and autoscaler aimed at the StatefulSet, the
// node id from the pod name, and a configuration Parley itself accepts.
package check

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/internal/tlstest"
)

const chart = "../parley"

// helm is bin/tools/helm (scripts/ensure-helm.sh builds it) or $HELM.
func helm(t *testing.T, args ...string) []byte {
	t.Helper()
	bin := os.Getenv("HELM")
	if bin == "" {
		bin, _ = filepath.Abs("../../../bin/tools/helm")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("helm not found at %s: run scripts/ensure-helm.sh (make test does)", bin)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// ServiceMonitor is the part of prometheus-operator's CRD
// (monitoring.coreos.com/v1) the chart writes; its Go types live in a
// module far larger than the check, so the fields are spelled here and
// decoded as strictly as the others.
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

type rendered struct {
	statefulSets []*appsv1.StatefulSet
	services     []*corev1.Service
	secrets      []*corev1.Secret
	pdbs         []*policyv1.PodDisruptionBudget
	hpas         []*autoscalingv2.HorizontalPodAutoscaler
	monitors     []*ServiceMonitor
}

// decode splits helm's output into documents and decodes each strictly
// into the type of its apiVersion and kind.
func decode(t *testing.T, out []byte) *rendered {
	t.Helper()
	r := &rendered{}
	for _, doc := range strings.Split(string(out), "\n---") {
		if strings.TrimSpace(strings.ReplaceAll(doc, "---", "")) == "" || isComments(doc) {
			continue
		}
		var head metav1.TypeMeta
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("not YAML: %v\n%s", err, doc)
		}
		var obj any
		switch head.APIVersion + " " + head.Kind {
		case "apps/v1 StatefulSet":
			o := &appsv1.StatefulSet{}
			r.statefulSets, obj = append(r.statefulSets, o), o
		case "v1 Service":
			o := &corev1.Service{}
			r.services, obj = append(r.services, o), o
		case "v1 Secret":
			o := &corev1.Secret{}
			r.secrets, obj = append(r.secrets, o), o
		case "policy/v1 PodDisruptionBudget":
			o := &policyv1.PodDisruptionBudget{}
			r.pdbs, obj = append(r.pdbs, o), o
		case "autoscaling/v2 HorizontalPodAutoscaler":
			o := &autoscalingv2.HorizontalPodAutoscaler{}
			r.hpas, obj = append(r.hpas, o), o
		case "monitoring.coreos.com/v1 ServiceMonitor":
			o := &ServiceMonitor{}
			r.monitors, obj = append(r.monitors, o), o
		default:
			t.Fatalf("unchecked kind %s %s:\n%s", head.APIVersion, head.Kind, doc)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("%s does not decode as the Kubernetes API type: %v\n%s", head.Kind, err, doc)
		}
	}
	return r
}

func isComments(doc string) bool {
	for _, l := range strings.Split(doc, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

func (r *rendered) service(name string) *corev1.Service {
	for _, s := range r.services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func TestChartLints(t *testing.T) {
	out := helm(t, "lint", "--strict", chart)
	if !bytes.Contains(out, []byte("0 chart(s) failed")) {
		t.Fatalf("helm lint: %s", out)
	}
	helm(t, "lint", "--strict", chart, "--set", "serviceMonitor.enabled=true,autoscaling.enabled=false,existingConfigSecret=mine")
}

func TestRenderedManifestsAreValidKubernetesObjects(t *testing.T) {
	pki := tlstest.New(t)
	cases := []struct {
		name string
		set  string
	}{
		{"defaults", ""},
		{"fixed size, ServiceMonitor, own config Secret, no TLS files, no preStop", "autoscaling.enabled=false,replicas=5,serviceMonitor.enabled=true,existingConfigSecret=mine,tlsSecret=,envFromSecret=,preStopSleepSeconds=0"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"template", "parley", chart, "--namespace", "prod",
				// The CA files the config names, made here so Parley's
				// own parser can read them.
				"--set", "config.kafka.tls.ca_file=" + pki.CAFile + ",config.clickhouse.tls.ca_file=" + pki.CAFile}
			if tc.set != "" {
				args = append(args, "--set", tc.set)
			}
			r := decode(t, helm(t, args...))
			checkChart(t, r, tc.set)
		})
	}
}

func checkChart(t *testing.T, r *rendered, set string) {
	if len(r.statefulSets) != 1 {
		t.Fatalf("%d StatefulSets", len(r.statefulSets))
	}
	ss := r.statefulSets[0]
	pod := ss.Spec.Template
	sel, err := metav1.LabelSelectorAsSelector(ss.Spec.Selector)
	if err != nil {
		t.Fatal(err)
	}
	if !sel.Matches(labels.Set(pod.Labels)) {
		t.Fatalf("StatefulSet selector %v does not match its pods %v", ss.Spec.Selector, pod.Labels)
	}
	// Members: the headless Service the StatefulSet names.
	members := r.service(ss.Spec.ServiceName)
	if members == nil || members.Spec.ClusterIP != corev1.ClusterIPNone || !members.Spec.PublishNotReadyAddresses {
		t.Fatalf("members Service %q: %+v", ss.Spec.ServiceName, members)
	}
	if ss.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		t.Fatalf("pod management %q", ss.Spec.PodManagementPolicy)
	}
	// Webhooks and API: a Service selecting the pods on the http port.
	var web *corev1.Service
	for _, s := range r.services {
		if s.Spec.ClusterIP != corev1.ClusterIPNone {
			web = s
		}
	}
	if web == nil || !reflect.DeepEqual(web.Spec.Selector, members.Spec.Selector) || web.Spec.Ports[0].TargetPort.String() != "http" {
		t.Fatalf("webhook Service %+v", web)
	}
	for _, s := range r.services {
		if !labelSet(s.Spec.Selector).matchedBy(pod.Labels) {
			t.Fatalf("Service %s selects %v, not the pods %v", s.Name, s.Spec.Selector, pod.Labels)
		}
	}

	if g := pod.Spec.TerminationGracePeriodSeconds; g == nil || *g != 30 {
		t.Fatalf("terminationGracePeriodSeconds %v", g)
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 {
		t.Fatalf("ports %+v", c.Ports)
	}
	probe := func(what string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != path || p.HTTPGet.Port.String() != "http" {
			t.Fatalf("%s probe %+v, want GET %s on http", what, p, path)
		}
	}
	probe("liveness", c.LivenessProbe, "/healthz")
	probe("startup", c.StartupProbe, "/healthz")
	probe("readiness", c.ReadinessProbe, "/readyz")
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Fatalf("resources %+v", c.Resources)
	}
	var podName bool
	for _, e := range c.Env {
		podName = podName || (e.Name == "POD_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name")
	}
	if !podName {
		t.Fatalf("POD_NAME is not the pod's name: %+v", c.Env)
	}
	if strings.Contains(set, "preStopSleepSeconds=0") != (c.Lifecycle == nil) {
		t.Fatalf("preStop %+v with %q", c.Lifecycle, set)
	}

	// The configuration: a Secret mounted at /etc/parley, read by `serve`.
	var cfgSecret string
	for _, v := range pod.Spec.Volumes {
		if v.Name == "config" && v.Secret != nil {
			cfgSecret = v.Secret.SecretName
		}
	}
	if strings.Join(c.Args, " ") != "serve --config /etc/parley/parley.yaml" || cfgSecret == "" {
		t.Fatalf("args %q, config Secret %q", c.Args, cfgSecret)
	}
	if strings.Contains(set, "existingConfigSecret=mine") {
		if cfgSecret != "mine" || len(r.secrets) != 0 {
			t.Fatalf("own config Secret: mounted %q, rendered %d", cfgSecret, len(r.secrets))
		}
	} else {
		if len(r.secrets) != 1 || r.secrets[0].Name != cfgSecret {
			t.Fatalf("config Secret %q not rendered", cfgSecret)
		}
		checkConfig(t, r.secrets[0].StringData["parley.yaml"], r)
	}

	// Disruption budget and autoscaler aim at these pods.
	if len(r.pdbs) != 1 || r.pdbs[0].Spec.MaxUnavailable == nil || r.pdbs[0].Spec.MaxUnavailable.IntValue() != 1 ||
		!reflect.DeepEqual(r.pdbs[0].Spec.Selector, ss.Spec.Selector) {
		t.Fatalf("PodDisruptionBudget %+v", r.pdbs)
	}
	if strings.Contains(set, "autoscaling.enabled=false") {
		if len(r.hpas) != 0 || ss.Spec.Replicas == nil || *ss.Spec.Replicas != 5 {
			t.Fatalf("fixed size: %d autoscalers, replicas %v", len(r.hpas), ss.Spec.Replicas)
		}
	} else {
		if len(r.hpas) != 1 || ss.Spec.Replicas != nil {
			t.Fatalf("autoscaled: %d autoscalers, replicas %v (the autoscaler owns them)", len(r.hpas), ss.Spec.Replicas)
		}
		h := r.hpas[0]
		ref := h.Spec.ScaleTargetRef
		if ref.Kind != "StatefulSet" || ref.Name != ss.Name || ref.APIVersion != "apps/v1" ||
			len(h.Spec.Metrics) != 1 || h.Spec.Metrics[0].Resource == nil || h.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
			t.Fatalf("autoscaler %+v", h.Spec)
		}
	}
	if strings.Contains(set, "serviceMonitor.enabled=true") {
		if len(r.monitors) != 1 {
			t.Fatalf("%d ServiceMonitors", len(r.monitors))
		}
		m := r.monitors[0]
		if !labelSet(m.Spec.Selector.MatchLabels).matchedBy(members.Labels) || labelSet(m.Spec.Selector.MatchLabels).matchedBy(web.Labels) {
			t.Fatalf("ServiceMonitor selects %v: members %v, web %v", m.Spec.Selector.MatchLabels, members.Labels, web.Labels)
		}
		if len(m.Spec.Endpoints) != 1 || m.Spec.Endpoints[0].Port != members.Spec.Ports[0].Name || m.Spec.Endpoints[0].Path != "/metrics" {
			t.Fatalf("ServiceMonitor endpoints %+v", m.Spec.Endpoints)
		}
	} else if len(r.monitors) != 0 {
		t.Fatal("ServiceMonitor rendered though off")
	}
}

// checkConfig parses the rendered parley.yaml with Parley's own parser,
// the ${VAR}s set as the env Secret would.
func checkConfig(t *testing.T, raw string, r *rendered) {
	for _, v := range []string{"KAFKA_PASSWORD", "CLICKHOUSE_PASSWORD", "PARLEY_ADMIN_KEY", "ACME_TWILIO_TOKEN"} {
		t.Setenv(v, "secret-value-0123456789")
	}
	t.Setenv("POD_NAME", "parley-2")
	cfg, err := config.Parse([]byte(raw))
	if err != nil {
		t.Fatalf("Parley refuses the rendered config: %v\n%s", err, raw)
	}
	if cfg.NodeID != "parley-2" || cfg.HTTP.Addr != "0.0.0.0:8080" {
		t.Fatalf("node_id %q, http.addr %q", cfg.NodeID, cfg.HTTP.Addr)
	}
	if len(cfg.Kafka.Brokers) != 3 || cfg.Kafka.ReplicationFactor != 3 || cfg.Kafka.SASL.Mechanism == "" || !cfg.Kafka.TLS.On() || !cfg.ClickHouse.TLS.On() {
		t.Fatalf("kafka %+v, clickhouse tls %+v", cfg.Kafka, cfg.ClickHouse.TLS)
	}
	for _, h := range r.hpas {
		if int(h.Spec.MaxReplicas) > cfg.Kafka.Partitions {
			t.Fatalf("autoscaler up to %d nodes, but %d partitions: the extra nodes would idle", h.Spec.MaxReplicas, cfg.Kafka.Partitions)
		}
	}
	if strings.Contains(raw, "secret-value") {
		t.Fatal("a secret's value is in the rendered config")
	}
}

type labelSet map[string]string

// matchedBy reports whether every label of l is in labels.
func (l labelSet) matchedBy(have map[string]string) bool {
	if len(l) == 0 {
		return false
	}
	for k, v := range l {
		if have[k] != v {
			return false
		}
	}
	return true
}
