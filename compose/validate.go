package compose

import (
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// validate checks what compose-go's consistency check would, and what stack
// does not support, collecting every problem instead of stopping at the
// first.
func (m *Model) validate(p *problems, unsup *unsupported) {
	active := map[string]bool{}
	for n := range m.project.Services {
		active[n] = true
	}
	unsup.report(p, active)
	for _, name := range sortedKeys(m.project.Services) {
		s := m.project.Services[name]
		m.checkImage(p, s)
		m.checkReferences(p, s)
		m.checkSharing(p, s)
		checkScale(p, s)
		checkLimits(p, s)
		checkHealthcheck(p, s)
	}
	m.checkSubnets(p)
	if _, err := dependencyOrder(m.project); err != nil {
		var cyc *cycleError
		if asCycle(err, &cyc) {
			p.add(cyc.path[0], "depends_on", err)
		}
	}
}

func (m *Model) checkImage(p *problems, s types.ServiceConfig) {
	if s.Image == "" {
		p.addf(s.Name, "image", "missing: stack runs images and does not build them yet (set image:)")
	}
}

// checkReferences checks that every network, volume, secret, config and
// dependency a service names is declared.
func (m *Model) checkReferences(p *problems, s types.ServiceConfig) {
	for _, n := range sortedKeys(s.Networks) {
		if _, ok := m.project.Networks[n]; !ok {
			p.addf(s.Name, "networks", "undefined network %q (declare it under the top-level networks:)", n)
		}
	}
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeVolume && v.Source != "" {
			if _, ok := m.project.Volumes[v.Source]; !ok {
				p.addf(s.Name, "volumes", "undefined volume %q (declare it under the top-level volumes:)", v.Source)
			}
		}
	}
	for _, sec := range s.Secrets {
		if _, ok := m.project.Secrets[sec.Source]; !ok {
			p.addf(s.Name, "secrets", "undefined secret %q (declare it under the top-level secrets:)", sec.Source)
		}
	}
	for _, c := range s.Configs {
		if _, ok := m.project.Configs[c.Source]; !ok {
			p.addf(s.Name, "configs", "undefined config %q (declare it under the top-level configs:)", c.Source)
		}
	}
	for _, dep := range sortedKeys(s.DependsOn) {
		m.checkDependency(p, s.Name, dep, s.DependsOn[dep])
	}
}

func (m *Model) checkDependency(p *problems, service, dep string, d types.ServiceDependency) {
	if _, ok := m.project.Services[dep]; ok || m.deselected[dep] {
		return
	}
	if _, off := m.project.DisabledServices[dep]; off {
		if d.Required {
			p.addf(service, "depends_on", "service %q is not enabled (enable its profile, or set required: false)", dep)
		}
		return
	}
	p.addf(service, "depends_on", "undefined service %q", dep)
}

// checkSharing checks network_mode, ipc, pid and volumes_from references
// to other services.
func (m *Model) checkSharing(p *problems, s types.ServiceConfig) {
	if s.NetworkMode != "" && len(s.Networks) > 0 {
		p.addf(s.Name, "network_mode", "cannot be combined with networks (remove one of them)")
	}
	m.checkServiceRef(p, s.Name, "network_mode", s.NetworkMode)
	m.checkServiceRef(p, s.Name, "ipc", s.Ipc)
	m.checkServiceRef(p, s.Name, "pid", s.Pid)
	for _, v := range s.VolumesFrom {
		if !strings.HasPrefix(v, "container:") {
			m.checkServiceRef(p, s.Name, "volumes_from", "service:"+strings.Split(v, ":")[0])
		}
	}
}

func (m *Model) checkServiceRef(p *problems, service, key, value string) {
	name, ok := strings.CutPrefix(value, "service:")
	if !ok {
		return
	}
	if _, ok := m.project.Services[name]; !ok && !m.deselected[name] {
		p.addf(service, key, "undefined or disabled service %q", name)
	}
}

func checkScale(p *problems, s types.ServiceConfig) {
	if s.Scale != nil && s.Deploy != nil && s.Deploy.Replicas != nil && *s.Scale != *s.Deploy.Replicas {
		p.addf(s.Name, "scale", "%d differs from deploy.replicas %d (set only one)", *s.Scale, *s.Deploy.Replicas)
	}
	if s.GetScale() < 0 {
		p.addf(s.Name, "scale", "must be 0 or more, not %d", s.GetScale())
	}
	if s.Deploy != nil && s.Deploy.Mode != "" && s.Deploy.Mode != "replicated" {
		p.addf(s.Name, "deploy.mode", "%q is not supported (stack runs replicated services on one host)", s.Deploy.Mode)
	}
	if s.ContainerName != "" && s.GetScale() > 1 {
		p.addf(s.Name, "container_name", "%q cannot be used with %d replicas: container names are unique (remove container_name or scale to 1)", s.ContainerName, s.GetScale())
	}
}

// checkLimits rejects a limit set twice, top-level and under deploy, with
// different values.
func checkLimits(p *problems, s types.ServiceConfig) {
	if s.Deploy == nil {
		return
	}
	if l := s.Deploy.Resources.Limits; l != nil {
		differ(p, s.Name, "cpus", s.CPUS != 0 && l.NanoCPUs != 0 && l.NanoCPUs.Value() != s.CPUS)
		differ(p, s.Name, "mem_limit", s.MemLimit != 0 && l.MemoryBytes != 0 && l.MemoryBytes != s.MemLimit)
		differ(p, s.Name, "pids_limit", s.PidsLimit != 0 && l.Pids != 0 && l.Pids != s.PidsLimit)
	}
	if r := s.Deploy.Resources.Reservations; r != nil {
		differ(p, s.Name, "mem_reservation", s.MemReservation != 0 && r.MemoryBytes != 0 && r.MemoryBytes != s.MemReservation)
	}
}

func differ(p *problems, service, key string, bad bool) {
	if bad {
		p.addf(service, key, "differs from the value under deploy.resources (set only one)")
	}
}

func checkHealthcheck(p *problems, s types.ServiceConfig) {
	h := s.HealthCheck
	if h == nil || len(h.Test) == 0 {
		return
	}
	switch h.Test[0] {
	case "CMD", "CMD-SHELL", "NONE":
	default:
		p.addf(s.Name, "healthcheck.test", "must start with CMD, CMD-SHELL or NONE, not %q", h.Test[0])
	}
}

// newProblems starts a problem list whose errors name this model's files.
func (m *Model) newProblems() *problems { return &problems{loc: m.loc} }
