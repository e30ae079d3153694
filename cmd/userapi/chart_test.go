package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"userapi"
)

// The Helm chart, and the settings list in its values.yaml.
const (
	chartDir     = "../../deploy/helm/userapi"
	chartValues  = chartDir + "/values.yaml"
	valuesBegin  = "  # The list below is made from cmd/userapi/config.go by `make docs`: edit it there.\n"
	valuesEnd    = "  # End of the list made from cmd/userapi/config.go.\n"
	toolsModfile = "../../tools/go.mod"
)

// valuesSettings is every setting with its default, as commented lines under
// config: in values.yaml.
func valuesSettings() string {
	var b strings.Builder
	for _, s := range settings(&config{}) {
		fmt.Fprintf(&b, "  # %s: %q\n", s.name, s.def)
	}
	return b.String()
}

// values.yaml lists every setting with its default (make docs writes it).
func TestChartValuesListSettings(t *testing.T) {
	b, err := os.ReadFile(chartValues)
	if err != nil {
		t.Fatal(err)
	}
	before, rest, ok := strings.Cut(string(b), valuesBegin)
	got, after, ok2 := strings.Cut(rest, valuesEnd)
	if !ok || !ok2 {
		t.Fatalf("%s lacks the markers around the settings list:\n%s%s", chartValues, valuesBegin, valuesEnd)
	}
	want := valuesSettings()
	if *update {
		if err := os.WriteFile(chartValues, []byte(before+valuesBegin+want+valuesEnd+after), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got != want {
		t.Fatalf("%s's settings list differs from cmd/userapi/config.go (run make docs):\n got:\n%s\nwant:\n%s", chartValues, got, want)
	}
}

// manifest is the part of a rendered Kubernetes object the tests read.
type manifest struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name        string            `json:"name"`
		Annotations map[string]string `json:"annotations"`
	} `json:"metadata"`
	Spec struct {
		Selector map[string]any `json:"selector"` // Service: labels; workloads: matchLabels
		Ports    []struct {
			Name       string `json:"name"`
			TargetPort any    `json:"targetPort"`
		} `json:"ports"`
		Template struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
			Spec podSpec `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int `json:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot bool `json:"runAsNonRoot"`
		RunAsUser    int  `json:"runAsUser"`
	} `json:"securityContext"`
	Containers []container `json:"containers"`
}

type container struct {
	Name  string   `json:"name"`
	Args  []string `json:"args"`
	Env   []envVar `json:"env"`
	Ports []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	LivenessProbe   *probe `json:"livenessProbe"`
	ReadinessProbe  *probe `json:"readinessProbe"`
	Lifecycle       any    `json:"lifecycle"`
	SecurityContext struct {
		ReadOnlyRootFilesystem bool `json:"readOnlyRootFilesystem"`
	} `json:"securityContext"`
}

type envVar struct {
	Name      string `json:"name"`
	Value     string `json:"value"`
	ValueFrom *struct {
		SecretKeyRef *struct {
			Name string `json:"name"`
			Key  string `json:"key"`
		} `json:"secretKeyRef"`
	} `json:"valueFrom"`
}

type probe struct {
	HTTPGet struct {
		Path string `json:"path"`
		Port any    `json:"port"` // a number or a port name
	} `json:"httpGet"`
}

// env is the variable name, or the zero envVar when c lacks it.
func (c container) env(name string) envVar {
	if i := slices.IndexFunc(c.Env, func(e envVar) bool { return e.Name == name }); i >= 0 {
		return c.Env[i]
	}
	return envVar{}
}

// port is the container port p names (a number, or the name of a port).
func (c container) port(p any) int {
	for _, cp := range c.Ports {
		if cp.Name == p || float64(cp.ContainerPort) == p {
			return cp.ContainerPort
		}
	}
	return 0
}

// helmTemplate renders the chart with Helm from tools/go.mod. It skips the
// test only when that Helm cannot be built.
func helmTemplate(t *testing.T, args ...string) []manifest {
	t.Helper()
	helm := func(args ...string) ([]byte, error) {
		cmd := exec.Command("go", append([]string{"tool", "-modfile=" + toolsModfile, "helm"}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return out, fmt.Errorf("%w: %s", err, stderr.Bytes())
		}
		return out, nil
	}
	if _, err := helm("version", "--short"); err != nil {
		t.Skipf("SKIPPED: Helm (pinned in tools/go.mod) could not be built or run, so the chart is not checked: %v", err)
	}
	out, err := helm(append([]string{"template", "userapi", chartDir}, args...)...)
	if err != nil {
		t.Fatalf("helm template: %v", err)
	}
	var ms []manifest
	for doc := range strings.SplitSeq(string(out), "\n---\n") {
		var m manifest
		if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatalf("rendered manifest: %v\n%s", err, doc)
		}
		if m.Kind != "" {
			ms = append(ms, m)
		}
	}
	return ms
}

// The chart runs the binary as it is: every variable it sets is a setting,
// every setting can be set, probes ask for routes the API has on the port it
// listens on, and the Service reaches that port.
func TestChart(t *testing.T) {
	known := map[string]bool{}
	for _, s := range settings(&config{}) {
		known[s.name] = true
	}
	args := []string{"--set", "database.secretName=db", "--set", "redis.secretName=cache", "--set", "metrics.serviceMonitor.enabled=true"}
	// Set every setting through config, but those the chart sets itself in
	// every container.
	containers := 0
	setIn := map[string]int{}
	for _, m := range helmTemplate(t, args...) {
		for _, c := range m.Spec.Template.Spec.Containers {
			containers++
			for _, e := range c.Env {
				if !known[e.Name] {
					t.Fatalf("%s %s: env %s is no setting of userapi (cmd/userapi/config.go)", m.Kind, m.Metadata.Name, e.Name)
				}
				setIn[e.Name]++
			}
		}
	}
	for name := range known {
		if setIn[name] < containers {
			args = append(args, "--set-string", "config."+name+"=x")
		}
	}
	ms := helmTemplate(t, args...)

	byKind := map[string][]manifest{}
	for _, m := range ms {
		byKind[m.Kind] = append(byKind[m.Kind], m)
	}
	for _, kind := range []string{"Deployment", "Job", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "ServiceMonitor"} {
		if len(byKind[kind]) == 0 {
			t.Errorf("no %s rendered", kind)
		}
	}

	spec := struct {
		Info  struct{ Version string }
		Paths map[string]map[string]any
	}{}
	if err := yaml.Unmarshal(userapi.OpenAPI, &spec); err != nil {
		t.Fatal(err)
	}
	chart, err := os.ReadFile(chartDir + "/Chart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var meta struct{ AppVersion string }
	if err := yaml.Unmarshal(chart, &meta); err != nil {
		t.Fatal(err)
	}
	if meta.AppVersion != spec.Info.Version {
		t.Errorf("Chart.yaml appVersion = %q, want openapi.yaml's info.version %q", meta.AppVersion, spec.Info.Version)
	}

	var api *container
	var apiLabels map[string]string
	for _, m := range append(byKind["Deployment"], byKind["Job"]...) {
		pod := m.Spec.Template.Spec
		if !pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser == 0 {
			t.Errorf("%s %s: runs as root (securityContext %+v)", m.Kind, m.Metadata.Name, pod.SecurityContext)
		}
		for _, c := range pod.Containers {
			set := map[string]bool{}
			for _, e := range c.Env {
				if !known[e.Name] {
					t.Errorf("%s %s: env %s is no setting of userapi (cmd/userapi/config.go)", m.Kind, m.Metadata.Name, e.Name)
				}
				if set[e.Name] {
					t.Errorf("%s %s: env %s is set twice", m.Kind, m.Metadata.Name, e.Name)
				}
				set[e.Name] = true
			}
			for name := range known {
				if !set[name] {
					t.Errorf("%s %s: setting %s cannot be set", m.Kind, m.Metadata.Name, name)
				}
			}
			for _, secret := range []string{"DATABASE_URL", "REDIS_URL"} {
				if e := c.env(secret); e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					t.Errorf("%s %s: %s is not taken from a Secret", m.Kind, m.Metadata.Name, secret)
				}
			}
			if !c.SecurityContext.ReadOnlyRootFilesystem {
				t.Errorf("%s %s: the root filesystem is writable", m.Kind, m.Metadata.Name)
			}
			if c.Lifecycle != nil {
				t.Errorf("%s %s: has a lifecycle hook; the drain delay does its work", m.Kind, m.Metadata.Name)
			}
			if len(c.Args) > 0 && c.Args[0] == "serve" {
				api, apiLabels = &c, m.Spec.Template.Metadata.Labels
				if w := c.env("USERAPI_WORKERS").Value; w != "0" {
					t.Errorf("%s %s: serve with USERAPI_WORKERS=%q, want 0 (jobs run in the worker)", m.Kind, m.Metadata.Name, w)
				}
				checkGrace(t, m.Metadata.Name, pod, c)
			}
		}
		switch m.Kind {
		case "Job":
			if hook := m.Metadata.Annotations["helm.sh/hook"]; hook != "pre-install,pre-upgrade" {
				t.Errorf("Job %s: helm.sh/hook = %q, want pre-install,pre-upgrade", m.Metadata.Name, hook)
			}
			if args := pod.Containers[0].Args; !slices.Equal(args, []string{"migrate"}) {
				t.Errorf("Job %s: args %q, want [migrate]", m.Metadata.Name, args)
			}
		}
	}
	if api == nil {
		t.Fatal("no Deployment runs userapi serve")
	}

	// Probes and the Service reach the port USERAPI_ADDR listens on.
	addr := api.env("USERAPI_ADDR").Value
	for _, tt := range []struct {
		probe *probe
		path  string
	}{{api.LivenessProbe, "/livez"}, {api.ReadinessProbe, "/readyz"}} {
		if tt.probe == nil {
			t.Errorf("API: no probe for %s", tt.path)
			continue
		}
		got := tt.probe.HTTPGet
		if got.Path != tt.path {
			t.Errorf("API probe path = %q, want %q", got.Path, tt.path)
		}
		if _, ok := spec.Paths[got.Path]["get"]; !ok {
			t.Errorf("API probe path %q: no GET %s in openapi.yaml", got.Path, got.Path)
		}
		if port := api.port(got.Port); port == 0 || fmt.Sprintf(":%d", port) != addr {
			t.Errorf("API probe %s: port %v is container port %d, USERAPI_ADDR=%q", got.Path, got.Port, port, addr)
		}
	}
	var service *manifest
	for _, m := range byKind["Service"] {
		if sel := m.Spec.Selector; sel["app.kubernetes.io/component"] == "api" {
			service = &m
		}
	}
	if service == nil {
		t.Fatal("no Service selects the API pods")
	}
	for k, v := range service.Spec.Selector {
		if apiLabels[k] != v {
			t.Errorf("Service %s: selector %s=%v does not match the API pods (%v)", service.Metadata.Name, k, v, apiLabels)
		}
	}
	for _, p := range service.Spec.Ports {
		if port := api.port(p.TargetPort); port == 0 || fmt.Sprintf(":%d", port) != addr {
			t.Errorf("Service %s: targetPort %v is container port %d, USERAPI_ADDR=%q", service.Metadata.Name, p.TargetPort, port, addr)
		}
	}
}

// checkGrace fails unless the pod's grace period outlasts the drain delay
// and the shutdown timeout.
func checkGrace(t *testing.T, name string, pod podSpec, c container) {
	t.Helper()
	var total time.Duration
	for _, s := range []string{"USERAPI_DRAIN_DELAY", "USERAPI_SHUTDOWN_TIMEOUT"} {
		v := c.env(s).Value
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Errorf("%s: %s=%q: %v", name, s, v, err)
		}
		total += d
	}
	grace := 30 // Kubernetes' default
	if pod.TerminationGracePeriodSeconds != nil {
		grace = *pod.TerminationGracePeriodSeconds
	}
	if time.Duration(grace)*time.Second <= total {
		t.Errorf("%s: terminationGracePeriodSeconds %d, want above drain delay + shutdown timeout (%v)", name, grace, total)
	}
}
