package compose

import (
	"net/netip"

	"github.com/compose-spec/compose-go/v2/types"
)

// checkSubnets rejects, before anything is created, subnets that do not
// parse, two networks of the project whose subnets overlap, and a fixed
// ipv4_address outside its network's subnet.
func (m *Model) checkSubnets(p *problems) {
	subnets := map[string]netip.Prefix{}
	for _, key := range sortedKeys(m.project.Networks) {
		if pfx, ok := m.subnet(p, key, m.project.Networks[key]); ok {
			for other, o := range subnets {
				if o.Overlaps(pfx) {
					p.addf("", "networks."+key+".ipam.config", "subnet %s overlaps %s of network %q (choose disjoint subnets)", pfx, o, other)
				}
			}
			subnets[key] = pfx
		}
	}
	for _, name := range sortedKeys(m.project.Services) {
		m.checkAddresses(p, m.project.Services[name], subnets)
	}
}

func (m *Model) subnet(p *problems, key string, n types.NetworkConfig) (netip.Prefix, bool) {
	if n.External || len(n.Ipam.Config) == 0 || n.Ipam.Config[0] == nil || n.Ipam.Config[0].Subnet == "" {
		return netip.Prefix{}, false
	}
	c := n.Ipam.Config[0]
	pfx, err := netip.ParsePrefix(c.Subnet)
	if err != nil {
		p.addf("", "networks."+key+".ipam.config", "subnet %q is not a CIDR (10.5.0.0/24)", c.Subnet)
		return pfx, false
	}
	if c.Gateway != "" {
		if gw, err := netip.ParseAddr(c.Gateway); err != nil || !pfx.Contains(gw) {
			p.addf("", "networks."+key+".ipam.config", "gateway %s is not an address in %s", c.Gateway, pfx)
		}
	}
	if c.IPRange != "" {
		checkIPRange(p, key, c.IPRange, pfx.Masked())
	}
	return pfx.Masked(), true
}

// checkIPRange wants ip_range inside the subnet, with an address to give
// out besides the subnet's network and broadcast addresses.
func checkIPRange(p *problems, key, ipRange string, subnet netip.Prefix) {
	r, err := netip.ParsePrefix(ipRange)
	switch {
	case err != nil || r.Addr().Is4() != subnet.Addr().Is4():
		p.addf("", "networks."+key+".ipam.config", "ip_range %q is not a CIDR of the subnet's family (10.5.0.128/25)", ipRange)
	case r.Bits() < subnet.Bits() || !subnet.Contains(r.Addr()):
		p.addf("", "networks."+key+".ipam.config", "ip_range %s is not inside the subnet %s", ipRange, subnet)
	case r.Addr().Is4() && subnet.Bits() <= 30 && r.Bits() == 32 &&
		(r.Addr() == subnet.Addr() || r.Addr().Next().IsValid() && !subnet.Contains(r.Addr().Next())):
		p.addf("", "networks."+key+".ipam.config", "ip_range %s is the subnet's network or broadcast address, which no container can have", ipRange)
	}
}

func (m *Model) checkAddresses(p *problems, s types.ServiceConfig, subnets map[string]netip.Prefix) {
	for _, key := range sortedKeys(s.Networks) {
		cfg := s.Networks[key]
		if cfg == nil || cfg.Ipv4Address == "" {
			continue
		}
		addr, err := netip.ParseAddr(cfg.Ipv4Address)
		if err != nil || !addr.Is4() {
			p.addf(s.Name, "networks", "%s: ipv4_address %q is not an IPv4 address", key, cfg.Ipv4Address)
			continue
		}
		pfx, ok := subnets[key]
		if !ok {
			p.addf(s.Name, "networks", "%s: ipv4_address %s needs a subnet on network %q (set its ipam.config subnet)", key, addr, key)
		} else if !pfx.Contains(addr) {
			p.addf(s.Name, "networks", "%s: ipv4_address %s is outside the subnet %s", key, addr, pfx)
		}
	}
}
