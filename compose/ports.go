package compose

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/stackdev/stack/engine"
)

// ports publishes the service's ports for replica n. compose-go has already
// expanded short-syntax ranges into one entry per port; a published range
// left for a single container port gives replica n the n-th port of the
// range, and an empty published port lets the driver pick one.
func (b *serviceBuilder) ports(n int) []engine.PortBinding {
	var out []engine.PortBinding
	for _, p := range b.s.Ports {
		if pb, ok := b.port(p, n); ok {
			out = append(out, pb)
		}
	}
	return out
}

func (b *serviceBuilder) port(p types.ServicePortConfig, n int) (engine.PortBinding, bool) {
	proto := strings.ToLower(p.Protocol)
	if proto == "" {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" {
		b.problem("ports", "%d/%s: protocol %q is not supported (use tcp or udp)", p.Target, p.Protocol, p.Protocol)
		return engine.PortBinding{}, false
	}
	if p.Target == 0 || p.Target > 65535 {
		b.problem("ports", "container port %d is out of range 1-65535", p.Target)
		return engine.PortBinding{}, false
	}
	host, err := hostPort(p.Published, n)
	if err != nil {
		b.problem("ports", "%s:%d/%s: %v", p.Published, p.Target, proto, err)
		return engine.PortBinding{}, false
	}
	return engine.PortBinding{HostIP: p.HostIP, HostPort: host, ContainerPort: uint16(p.Target), Protocol: proto}, true
}

// hostPort picks the host port of replica n from "", "8080" or "8000-8009".
func hostPort(published string, n int) (uint16, error) {
	if published == "" {
		return 0, nil
	}
	lo, hi, isRange := strings.Cut(published, "-")
	start, err := parsePort(lo)
	if err != nil {
		return 0, err
	}
	if !isRange {
		return start, nil
	}
	end, err := parsePort(hi)
	if err != nil {
		return 0, err
	}
	if end < start {
		return 0, fmt.Errorf("host port range %s is reversed", published)
	}
	if p := int(start) + n - 1; p <= int(end) {
		return uint16(p), nil
	}
	return 0, fmt.Errorf("host port range %s has no port left for replica %d (widen the range or lower the scale)", published, n)
}

func parsePort(s string) (uint16, error) {
	v, err := strconv.ParseUint(s, 10, 16)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("host port %q must be a number in 1-65535", s)
	}
	return uint16(v), nil
}

// checkPortConflicts reports two containers publishing the same host port
// and protocol on overlapping addresses, before anything is created.
func checkPortConflicts(p *problems, containers []engine.ContainerSpec) {
	type owner struct {
		ip        string
		container engine.ContainerSpec
	}
	byPort := map[string][]owner{}
	for _, c := range containers {
		for _, pb := range c.Network.Ports {
			if pb.HostPort == 0 {
				continue
			}
			key := fmt.Sprintf("%d/%s", pb.HostPort, pb.Protocol)
			for _, o := range byPort[key] {
				switch {
				case !addressesOverlap(o.ip, pb.HostIP):
				case o.container.Name == c.Name:
					p.addf(c.Service, "ports", "host port %s is published twice", key)
				case o.container.Service != c.Service:
					p.addf(c.Service, "ports", "host port %s is already published by service %q (container %s); use another host port", key, o.container.Service, o.container.Name)
				default:
					p.addf(c.Service, "ports", "host port %s is published by every replica (%s and %s); publish a range (\"8000-8009:%d\") or scale to 1", key, o.container.Name, c.Name, pb.ContainerPort)
				}
			}
			byPort[key] = append(byPort[key], owner{ip: pb.HostIP, container: c})
		}
	}
}

func addressesOverlap(a, b string) bool {
	wild := func(ip string) bool { return ip == "" || ip == "0.0.0.0" || ip == "::" }
	return a == b || wild(a) || wild(b)
}
