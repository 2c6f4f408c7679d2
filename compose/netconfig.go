package compose

import (
	"slices"
	"strings"

	"github.com/stackdev/stack/engine"
)

// network is how one replica is wired: mode, networks with aliases and
// addresses, published ports, names and DNS settings.
func (b *serviceBuilder) network(containerName string, n int) engine.NetworkConfig {
	s := b.s
	nc := engine.NetworkConfig{
		Mode:       b.networkMode(),
		Ports:      b.ports(n),
		Expose:     slices.Clone([]string(s.Expose)),
		ExtraHosts: b.extraHosts(),
		DNS:        slices.Clone([]string(s.DNS)),
		DNSSearch:  slices.Clone([]string(s.DNSSearch)),
		DNSOptions: slices.Clone(s.DNSOpts),
	}
	if nc.Mode == "" {
		nc.Networks = b.attachments(containerName)
	} else if len(nc.Ports) > 0 {
		b.problem("ports", "cannot publish ports with network_mode %q (publish them on the service that owns the network, or remove network_mode)", b.s.NetworkMode)
	}
	return nc
}

// networkMode maps network_mode: none, host, service:NAME (the first
// replica of NAME) and container:NAME.
func (b *serviceBuilder) networkMode() string {
	mode := b.s.NetworkMode
	switch {
	case mode == "" || mode == "none" || mode == "host":
		return mode
	case strings.HasPrefix(mode, "container:"):
		return mode
	case strings.HasPrefix(mode, "service:"):
		return b.m.serviceContainer(strings.TrimPrefix(mode, "service:"))
	}
	b.problem("network_mode", "%q is not supported (use none, host, service:NAME or container:NAME; for a network use networks:)", mode)
	return ""
}

// serviceContainer is "container:<first replica of service>", how a
// service:NAME reference reaches the namespace of another service.
func (m *Model) serviceContainer(name string) string {
	s, ok := m.runnable(name)
	if !ok {
		return "container:" + m.project.Name + "-" + name + "-1"
	}
	return "container:" + m.containerName(s, 1)
}

// attachments lists the service's networks, highest priority first (ties
// by name), each with the service name, the container name and the
// declared aliases, as compose registers them.
func (b *serviceBuilder) attachments(containerName string) []engine.NetworkAttachment {
	var out []engine.NetworkAttachment
	for _, key := range b.s.NetworksByPriority() {
		a := engine.NetworkAttachment{Network: b.networkName(key)}
		a.Aliases = []string{b.s.Name, containerName}
		if cfg := b.s.Networks[key]; cfg != nil {
			a.Aliases = appendNew(a.Aliases, cfg.Aliases...)
			a.IPv4Address = cfg.Ipv4Address
			a.Priority = cfg.Priority
			if cfg.Ipv4Address != "" && b.s.GetScale() > 1 {
				b.problem("networks", "%s: ipv4_address %s cannot be shared by %d replicas (scale to 1 or remove ipv4_address)", key, cfg.Ipv4Address, b.s.GetScale())
			}
		}
		out = append(out, a)
	}
	return out
}

func appendNew(list []string, items ...string) []string {
	for _, it := range items {
		if !containsString(list, it) {
			list = append(list, it)
		}
	}
	return list
}

// networkName is the engine name of a network key.
func (b *serviceBuilder) networkName(key string) string {
	if n, ok := b.m.project.Networks[key]; ok && n.Name != "" {
		return n.Name
	}
	return b.m.project.Name + "_" + key
}

// networkNames are the engine names of the networks the service joins.
func (b *serviceBuilder) networkNames() []string {
	if b.s.NetworkMode != "" {
		return nil
	}
	var out []string
	for _, key := range b.s.NetworksByPriority() {
		out = append(out, b.networkName(key))
	}
	return out
}

// extraHosts are "host:ip" entries, sorted; ip may be host-gateway.
func (b *serviceBuilder) extraHosts() []string {
	if len(b.s.ExtraHosts) == 0 {
		return nil
	}
	out := b.s.ExtraHosts.AsList(":")
	slices.Sort(out)
	return out
}
