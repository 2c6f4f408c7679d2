package compose

import (
	"regexp"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/stackdev/stack/engine"
)

// networkSpecs are the networks the active services join.
func (m *Model) networkSpecs(p *problems) []engine.NetworkSpec {
	used := map[string]bool{}
	for _, s := range m.project.Services {
		if s.NetworkMode == "" {
			for key := range s.Networks {
				used[key] = true
			}
		}
	}
	var out []engine.NetworkSpec
	for _, key := range sortedKeys(m.project.Networks) {
		if used[key] {
			out = append(out, m.networkSpec(p, key, m.project.Networks[key]))
		}
	}
	return out
}

func (m *Model) networkSpec(p *problems, key string, n types.NetworkConfig) engine.NetworkSpec {
	spec := engine.NetworkSpec{
		Name: n.Name, Project: m.project.Name, Key: key, Driver: n.Driver,
		Internal: n.Internal, External: bool(n.External),
	}
	if spec.Name == "" {
		spec.Name = m.project.Name + "_" + key
	}
	checkObjectName(p, "networks."+key, spec.Name)
	if spec.External {
		return spec
	}
	if spec.Driver == "" {
		spec.Driver = "bridge"
	}
	if spec.Driver != "bridge" {
		p.addf("", "networks."+key+".driver", "%q is not supported (use bridge)", n.Driver)
	}
	if d := n.Ipam.Driver; d != "" && d != "default" {
		p.addf("", "networks."+key+".ipam.driver", "%q is not supported (stack allocates addresses itself; remove it)", d)
	}
	if len(n.Ipam.Config) > 1 {
		p.addf("", "networks."+key+".ipam.config", "only one subnet per network is supported, not %d", len(n.Ipam.Config))
	}
	if len(n.Ipam.Config) > 0 && n.Ipam.Config[0] != nil {
		c := n.Ipam.Config[0]
		spec.Subnet, spec.Gateway, spec.IPRange = c.Subnet, c.Gateway, c.IPRange
	}
	spec.ConfigHash = objectHash(n)
	spec.Labels = m.objectLabels(n.Labels, engine.LabelNetwork, key, spec.ConfigHash)
	return spec
}

// volumeSpecs are the named volumes the active services mount.
func (m *Model) volumeSpecs(p *problems) []engine.VolumeSpec {
	used := map[string]bool{}
	for _, s := range m.project.Services {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeVolume && v.Source != "" {
				used[v.Source] = true
			}
		}
	}
	var out []engine.VolumeSpec
	for _, key := range sortedKeys(m.project.Volumes) {
		if used[key] {
			out = append(out, m.volumeSpec(p, key, m.project.Volumes[key]))
		}
	}
	return out
}

func (m *Model) volumeSpec(p *problems, key string, v types.VolumeConfig) engine.VolumeSpec {
	spec := engine.VolumeSpec{
		Name: v.Name, Project: m.project.Name, Key: key, Driver: v.Driver,
		DriverOpts: copyMap(v.DriverOpts), External: bool(v.External),
	}
	if spec.Name == "" {
		spec.Name = m.project.Name + "_" + key
	}
	checkObjectName(p, "volumes."+key, spec.Name)
	if spec.External {
		return spec
	}
	if spec.Driver == "" {
		spec.Driver = "local"
	}
	if spec.Driver != "local" {
		p.addf("", "volumes."+key+".driver", "%q is not supported (use local)", v.Driver)
	}
	hashed := v
	hashed.Driver = spec.Driver
	spec.ConfigHash = objectHash(hashed)
	spec.Labels = m.objectLabels(v.Labels, engine.LabelVolume, key, spec.ConfigHash)
	return spec
}

// objectLabels are a network's or volume's labels plus compose's.
func (m *Model) objectLabels(user types.Labels, keyLabel, key, hash string) map[string]string {
	l := copyMap(user)
	if l == nil {
		l = map[string]string{}
	}
	l[engine.LabelProject] = m.project.Name
	l[keyLabel] = key
	l[engine.LabelVersion] = m.version()
	l[engine.LabelConfigHash] = hash
	l[engine.LabelHashVersion] = HashVersion
	return l
}

// objectName is docker's rule for volume and network names; it also keeps
// a name from leaving the state directory it is stored under.
var objectName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func checkObjectName(p *problems, key, name string) {
	if !objectName.MatchString(name) {
		p.addf("", key+".name", "%q is not a valid name (use letters, digits, '_', '.', '-'; start with a letter or digit)", name)
	}
}
