package daemon

import (
	"net/netip"
	"sort"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/netdns"
)

// Endpoints turns an observed state into the DNS server's input: one
// endpoint per running container and network address. One-off containers
// (`stack run`) answer to their name, not to their service's.
func Endpoints(st engine.State) []netdns.Endpoint {
	var out []netdns.Endpoint
	for _, c := range st.Containers {
		if c.Status != engine.StatusRunning {
			continue
		}
		for _, network := range sortedKeys(c.Addresses) {
			ip, err := netip.ParseAddr(c.Addresses[network])
			if err != nil {
				continue
			}
			out = append(out, endpoint(c, network, ip))
		}
	}
	return out
}

func endpoint(c engine.Container, network string, ip netip.Addr) netdns.Endpoint {
	e := netdns.Endpoint{
		Network:   network,
		IP:        ip,
		Container: c.Name,
		Service:   c.Service,
		Project:   c.Project,
		Running:   true,
		Unhealthy: c.Health == "unhealthy",
	}
	if c.OneOff {
		e.Service = ""
	}
	e.Aliases = append(e.Aliases, c.Aliases[network]...)
	if c.Hostname != "" {
		e.Aliases = append(e.Aliases, c.Hostname)
	}
	return e
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Listeners is where the DNS server listens: UDP and TCP port on each
// network's gateway, answering only clients from that network's subnet.
// Networks without a valid gateway are left out (and reported by Status).
func Listeners(st engine.State, port uint16) []netdns.Listener {
	var out []netdns.Listener
	for _, n := range st.Networks {
		gw, err := netip.ParseAddr(n.Gateway)
		if err != nil {
			continue
		}
		l := netdns.Listener{Network: n.Name, Addr: netip.AddrPortFrom(gw, port), Internal: n.Internal}
		if p, err := netip.ParsePrefix(n.Subnet); err == nil {
			l.Allow = []netip.Prefix{p.Masked()}
		}
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Network < out[j].Network })
	return out
}

// Gateways lists the networks' gateway addresses: the DNS server must never
// forward to them (it would forward to itself).
func Gateways(st engine.State) []netip.Addr {
	var out []netip.Addr
	for _, n := range st.Networks {
		if gw, err := netip.ParseAddr(n.Gateway); err == nil {
			out = append(out, gw)
		}
	}
	return out
}
