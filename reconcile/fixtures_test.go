package reconcile

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/stackdev/stack/compose"
	"github.com/stackdev/stack/engine"
)

const (
	busybox  = "docker.io/library/busybox:latest"
	postgres = "docker.io/library/postgres:16"
)

// svcDef is a compact service declaration for tests.
type svcDef struct {
	name     string
	image    string // busybox when empty
	replicas int    // 1 when zero; use scale0 for none
	scale0   bool
	env      []string
	deps     []engine.Dependency
	networks []string // keys; "default" when empty
	volumes  []string // named volume keys, mounted at /<key>
	netMode  string
}

func dep(svc string) engine.Dependency {
	return engine.Dependency{Service: svc, Condition: "service_started", Required: true}
}

// demo builds project "demo" as compose.Load would: one spec per replica,
// a config hash from what the service declares.
func demo(defs ...svcDef) compose.Desired {
	d := compose.Desired{Project: "demo"}
	nets, vols := map[string]bool{}, map[string]bool{}
	for _, s := range defs {
		s = s.withDefaults()
		svc := compose.Service{Name: s.name, Image: s.image, Replicas: s.replicas, DependsOn: s.deps}
		for n := 1; n <= s.replicas; n++ {
			d.Containers = append(d.Containers, s.spec(n))
		}
		for _, k := range s.networks {
			nets[k] = true
			svc.Networks = append(svc.Networks, "demo_"+k)
		}
		for _, k := range s.volumes {
			vols[k] = true
			svc.Volumes = append(svc.Volumes, "demo_"+k)
		}
		d.Services = append(d.Services, svc)
	}
	for _, k := range sortedKeys(nets) {
		d.Networks = append(d.Networks, engine.NetworkSpec{Name: "demo_" + k, Project: "demo", Key: k, ConfigHash: "net-" + k, Driver: "bridge"})
	}
	for _, k := range sortedKeys(vols) {
		d.Volumes = append(d.Volumes, engine.VolumeSpec{Name: "demo_" + k, Project: "demo", Key: k, ConfigHash: "vol-" + k, Driver: "local"})
	}
	return d
}

func (s svcDef) withDefaults() svcDef {
	if s.image == "" {
		s.image = busybox
	}
	if s.replicas == 0 && !s.scale0 {
		s.replicas = 1
	}
	if s.scale0 {
		s.replicas = 0
	}
	if len(s.networks) == 0 && s.netMode == "" {
		s.networks = []string{"default"}
	}
	return s
}

func (s svcDef) spec(n int) engine.ContainerSpec {
	name := fmt.Sprintf("demo-%s-%d", s.name, n)
	hash := fmt.Sprintf("hash(%s %s %s %s %s)", s.image, strings.Join(s.env, " "), s.netMode, strings.Join(s.networks, " "), strings.Join(s.volumes, " "))
	c := engine.ContainerSpec{
		Name: name, Project: "demo", Service: s.name, Number: n, Image: s.image, ConfigHash: hash,
		Labels: map[string]string{
			engine.LabelProject: "demo", engine.LabelService: s.name,
			engine.LabelNumber: fmt.Sprint(n), engine.LabelConfigHash: hash,
		},
		DependsOn: s.deps,
		Process:   engine.Process{Command: []string{"sleep", "3600"}, Env: s.env},
		Network:   engine.NetworkConfig{Mode: s.netMode},
	}
	for _, k := range s.networks {
		c.Network.Networks = append(c.Network.Networks, engine.NetworkAttachment{Network: "demo_" + k, Aliases: []string{s.name}})
	}
	for _, k := range s.volumes {
		c.Mounts = append(c.Mounts, engine.Mount{Type: engine.MountVolume, Source: "demo_" + k, Target: "/" + k})
	}
	return c
}

func digestOf(ref string) string { return "sha256:" + strings.Repeat(fmt.Sprint(len(ref)%10), 8) }

// observed is the state a converged `up` of d leaves: every container
// running under its name with ID "id-<name>", every network and volume
// created, every image present.
func observed(d compose.Desired) engine.State {
	st := engine.State{Images: map[string]string{}}
	for _, c := range d.Containers {
		st.Images[c.Image] = digestOf(c.Image)
		st.Containers = append(st.Containers, containerFrom(c, engine.StatusRunning))
	}
	for _, n := range d.Networks {
		if !n.External {
			st.Networks = append(st.Networks, engine.Network{Name: n.Name, Project: n.Project, ConfigHash: n.ConfigHash})
		}
	}
	for _, v := range d.Volumes {
		if !v.External {
			st.Volumes = append(st.Volumes, engine.Volume{Name: v.Name, Project: v.Project, ConfigHash: v.ConfigHash})
		}
	}
	return st
}

func containerFrom(c engine.ContainerSpec, status engine.Status) engine.Container {
	oc := engine.Container{
		ID: "id-" + c.Name, Name: c.Name, Project: c.Project, Service: c.Service, Number: c.Number,
		ConfigHash: c.ConfigHash, Image: c.Image, ImageID: digestOf(c.Image), Labels: c.Labels, Status: status,
		Networks: attachments(c), Volumes: mountedVolumes(c),
	}
	if len(c.DependsOn) > 0 {
		var parts []string
		for _, d := range c.DependsOn {
			parts = append(parts, fmt.Sprintf("%s:%s:%t", d.Service, d.Condition, d.Restart))
		}
		oc.Labels = maps.Clone(c.Labels)
		oc.Labels[engine.LabelDependsOn] = strings.Join(parts, ",")
	}
	return oc
}

// container returns a pointer to the observed container named name.
func container(t *testing.T, st *engine.State, name string) *engine.Container {
	t.Helper()
	for i := range st.Containers {
		if st.Containers[i].Name == name {
			return &st.Containers[i]
		}
	}
	t.Fatalf("no container %s in state", name)
	return nil
}

func compute(t *testing.T, d compose.Desired, st engine.State, opts Options) Plan {
	t.Helper()
	p, err := Compute(d, st, opts)
	if err != nil {
		t.Fatalf("Compute: %v", err)
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("Compute returned an invalid plan: %v\n%s", err, p.Graph())
	}
	return p
}

// render is the plan as `stack plan` shows it: the plan, then its warnings.
func render(p Plan) string {
	var b strings.Builder
	b.WriteString(p.String())
	for _, w := range p.Warnings {
		fmt.Fprintf(&b, "Warning: %s\n", w)
	}
	return b.String()
}

// wantText compares a rendering with the expected text, both trimmed.
func wantText(t *testing.T, what, got, want string) {
	t.Helper()
	got, want = strings.TrimSpace(got), strings.TrimSpace(dedent(want))
	if got != want {
		t.Errorf("%s:\n--- got\n%s\n--- want\n%s", what, got, want)
	}
}

// dedent strips the tab indentation of a raw string literal.
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimLeft(l, "\t")
	}
	return strings.Join(lines, "\n")
}
