package compose

import (
	"slices"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/stackdev/stack/engine"
)

// Desired computes the desired state of the model: one container spec per
// replica, and the networks and volumes the services use.
func (m *Model) Desired() (Desired, error) {
	p := m.newProblems()
	d := m.desired(p)
	return d, p.err()
}

func (m *Model) desired(p *problems) Desired {
	d := Desired{
		Project:     m.project.Name,
		WorkingDir:  m.project.WorkingDir,
		ConfigFiles: m.in.files,
	}
	d.Declared = m.allServiceNames()
	order, _ := dependencyOrder(m.project) // a cycle is reported by validate
	for _, name := range order {
		s := m.project.Services[name]
		svc := serviceBuilder{m: m, p: p, s: s}
		svc.prepare()
		d.Services = append(d.Services, svc.service())
		for n := 1; n <= s.GetScale(); n++ {
			d.Containers = append(d.Containers, svc.container(n))
		}
	}
	d.Networks = m.networkSpecs(p)
	d.Volumes = m.volumeSpecs(p)
	checkPortConflicts(p, d.Containers)
	return d
}

// serviceBuilder turns one compose service into its Service entry and its
// container specs. Each concern lives in its own file: process.go,
// mounts.go, netconfig.go, ports.go, resources.go, security.go, files.go,
// lifecycle.go.
type serviceBuilder struct {
	m *Model
	p *problems
	s types.ServiceConfig

	files []engine.File
	hash  string
}

// prepare reads the files the service uses and computes its hash, once for
// all replicas.
func (b *serviceBuilder) prepare() {
	inputs := b.readInputs()
	h, err := serviceHash(b.s, inputs)
	if err != nil {
		b.p.add(b.s.Name, "", err)
	}
	b.hash = h
}

func (b *serviceBuilder) problem(key, format string, args ...any) {
	b.p.addf(b.s.Name, key, format, args...)
}

func (b *serviceBuilder) service() Service {
	return Service{
		Name:       b.s.Name,
		Image:      NormalizeImage(b.s.Image),
		Replicas:   b.s.GetScale(),
		DependsOn:  b.dependencies(),
		PullPolicy: b.pullPolicy(),
		NoAttach:   b.s.Attach != nil && !*b.s.Attach,
		Networks:   b.networkNames(),
		Volumes:    b.volumeNames(),
	}
}

func (b *serviceBuilder) container(n int) engine.ContainerSpec {
	name := b.m.containerName(b.s, n)
	spec := engine.ContainerSpec{
		Name:        name,
		Project:     b.m.project.Name,
		Service:     b.s.Name,
		Number:      n,
		Image:       NormalizeImage(b.s.Image),
		ConfigHash:  b.hash,
		Labels:      b.labels(n),
		Annotations: copyMap(b.s.Annotations),
		DependsOn:   b.dependencies(),
		Process:     b.process(),
		Mounts:      b.mounts(),
		Files:       slices.Clone(b.files),
		Network:     b.network(name, n),
		Resources:   b.resources(),
		Security:    b.security(),
		Restart:     b.restart(),
		Health:      b.health(),
		Logging:     b.logging(),
	}
	return spec
}

// containerName is container_name, else <project>-<service>-<n>.
func (m *Model) containerName(s types.ServiceConfig, n int) string {
	if s.ContainerName != "" {
		return s.ContainerName
	}
	return m.project.Name + "-" + s.Name + "-" + itoa(n)
}

func copyMap[M ~map[string]string](in M) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}
