package netdns

import (
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/miekg/dns"
)

// Endpoint is one address of one container on one network: the plain input a
// Table is built from. A container with an IPv4 and an IPv6 address on a
// network gives two Endpoints.
type Endpoint struct {
	Network   string     // stack network the address is on, e.g. "demo_default"
	IP        netip.Addr // the container's address on Network
	Container string     // container name, e.g. "demo-web-1"; answers PTR
	Service   string     // compose service, e.g. "web" (may be empty)
	Project   string     // compose project, e.g. "demo": adds <service>.<project>
	// Aliases are further names on Network: network aliases, the hostname,
	// container_name, anything else the container answers to.
	Aliases []string
	// Running is false for a created, paused, exited or stopped container:
	// such an endpoint is never answered.
	Running bool
	// Unhealthy is true when the container's healthcheck fails. An unhealthy
	// endpoint is left out of a name's answer while another endpoint of that
	// name is not unhealthy; when all are, all are answered (a failing answer
	// beats no answer).
	Unhealthy bool
}

// Names lists every name the endpoint answers to on its network, lower-cased,
// without the trailing dot and without the <name>.<network> forms the Table
// adds: container, service, <service>.<project>, aliases.
func (e Endpoint) Names() []string {
	names := make([]string, 0, 3+len(e.Aliases))
	names = append(names, e.Container, e.Service)
	if e.Service != "" && e.Project != "" {
		names = append(names, e.Service+"."+e.Project)
	}
	names = append(names, e.Aliases...)
	out := names[:0]
	seen := make(map[string]bool, len(names))
	for _, n := range names {
		n = strings.ToLower(strings.TrimSuffix(n, "."))
		if n == "" || seen[n] || !validName(n) {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	return out
}

func validName(n string) bool {
	_, ok := dns.IsDomainName(n)
	return ok && !strings.ContainsAny(n, " \t\\\"();@$")
}

// Table is the immutable set of names a Server answers, per network. Build a
// new one with NewTable on every change and hand it to Server.SetTable: the
// swap is atomic, so queries in flight finish on the table they started with.
// The zero Table answers nothing.
type Table struct {
	nets map[string]*zone // by network name
	// also maps a container's address on a network to its other networks:
	// a container attached to several networks resolves the names of all
	// of them (the network it asks first), as with Docker.
	also map[clientKey][]string
}

type clientKey struct {
	network string
	ip      netip.Addr
}

// zone holds one network's records, keyed by lower-cased FQDN.
type zone struct {
	origin string            // "<network>." when names under it are ours alone, or ""
	hosts  map[string]*addrs // A and AAAA
	ptr    map[string]string // reverse name -> target FQDN
	// ptrWire holds each PTR target in wire format, for the fast path.
	ptrWire map[string][]byte
}

// addrs is the answer for one name. All slices are shared, read-only.
type addrs struct {
	v4, v6 []net.IP
	// raw4 and raw6 are the same addresses back to back (4 and 16 bytes
	// each): the fast path writes its records from them.
	raw4, raw6 []byte
}

// NewTable builds a Table from endpoints. Endpoints that are not Running are
// left out; names that are not valid domain names are skipped. Every name n
// of an endpoint on network N is also answered as n.N, like Docker.
func NewTable(endpoints []Endpoint) *Table {
	byNet := map[string][]Endpoint{}
	for _, e := range endpoints {
		if e.Running && e.IP.IsValid() && e.Network != "" {
			byNet[e.Network] = append(byNet[e.Network], e)
		}
	}
	t := &Table{nets: make(map[string]*zone, len(byNet)), also: alsoNetworks(endpoints)}
	for network, eps := range byNet {
		t.nets[network] = newZone(network, eps)
	}
	return t
}

// alsoNetworks indexes the running containers on more than one network.
func alsoNetworks(endpoints []Endpoint) map[clientKey][]string {
	nets := map[string][]string{} // container -> its networks, in order
	for _, e := range endpoints {
		if e.Running && e.IP.IsValid() && e.Network != "" && e.Container != "" && !slices.Contains(nets[e.Container], e.Network) {
			nets[e.Container] = append(nets[e.Container], e.Network)
		}
	}
	also := map[clientKey][]string{}
	for _, e := range endpoints {
		all := nets[e.Container]
		if len(all) < 2 || !e.Running || !e.IP.IsValid() {
			continue
		}
		others := make([]string, 0, len(all)-1)
		for _, n := range all {
			if n != e.Network {
				others = append(others, n)
			}
		}
		also[clientKey{e.Network, e.IP.Unmap()}] = others
	}
	return also
}

// alsoHosts finds name on the other networks of the container that asks
// from client on network, in order; nil when it has none or none knows it.
func (t *Table) alsoHosts(network string, client netip.Addr, name string) *addrs {
	for _, other := range t.also[clientKey{network, client}] {
		if z := t.zone(other); z != nil {
			if a := z.hosts[name]; a != nil {
				return a
			}
		}
	}
	return nil
}

func newZone(network string, eps []Endpoint) *zone {
	z := &zone{hosts: map[string]*addrs{}, ptr: map[string]string{}, ptrWire: map[string][]byte{}}
	if strings.Contains(network, "_") {
		// Compose's <project>_<name> networks cannot be real domains, so
		// misses under them are ours to answer; an external network named
		// like a domain ("corp") must not hide that domain.
		z.origin = dns.Fqdn(strings.ToLower(network))
	}
	byName := map[string][]Endpoint{}
	for _, e := range eps {
		names := e.Names()
		for _, n := range names {
			byName[dns.Fqdn(n)] = append(byName[dns.Fqdn(n)], e)
			if validName(n + "." + network) {
				qualified := dns.Fqdn(n + "." + strings.ToLower(network))
				byName[qualified] = append(byName[qualified], e)
			}
		}
		z.addPTR(e.IP, names)
	}
	for name, eps := range byName {
		z.hosts[name] = answerable(eps)
	}
	return z
}

// addPTR maps ip's reverse name to the endpoint's first name (its container
// name when it has one). The first endpoint to claim an address keeps it.
func (z *zone) addPTR(ip netip.Addr, names []string) {
	if len(names) == 0 {
		return
	}
	rev, err := dns.ReverseAddr(ip.Unmap().String())
	if err != nil {
		return
	}
	if _, taken := z.ptr[rev]; taken {
		return
	}
	target := dns.Fqdn(names[0])
	z.ptr[rev] = target
	wire := make([]byte, 256)
	if n, err := dns.PackDomainName(target, wire, 0, nil, false); err == nil {
		z.ptrWire[rev] = wire[:n:n]
	}
}

// answerable applies the health rule to the endpoints sharing one name and
// splits the survivors by family, without duplicates, in a stable order.
func answerable(eps []Endpoint) *addrs {
	healthy := eps[:0:0]
	for _, e := range eps {
		if !e.Unhealthy {
			healthy = append(healthy, e)
		}
	}
	if len(healthy) > 0 {
		eps = healthy
	}
	ips := make([]netip.Addr, 0, len(eps))
	for _, e := range eps {
		ips = append(ips, e.IP.Unmap())
	}
	sort.Slice(ips, func(i, j int) bool { return ips[i].Less(ips[j]) })
	a := &addrs{}
	for i, ip := range ips {
		if i > 0 && ips[i-1] == ip {
			continue
		}
		if ip.Is4() {
			a.v4 = append(a.v4, net.IP(ip.AsSlice()))
			a.raw4 = append(a.raw4, ip.AsSlice()...)
		} else {
			a.v6 = append(a.v6, net.IP(ip.AsSlice()))
			a.raw6 = append(a.raw6, ip.AsSlice()...)
		}
	}
	return a
}

// Lookup returns the addresses name has on network, after the health rule,
// in a stable order (the server shuffles per answer). ok is false when the
// name does not exist on network; a name with only IPv4 addresses has ok
// true and no IPv6 addresses. name is case-insensitive, with or without the
// trailing dot.
func (t *Table) Lookup(network, name string) (v4, v6 []netip.Addr, ok bool) {
	z := t.zone(network)
	if z == nil {
		return nil, nil, false
	}
	a := z.hosts[dns.Fqdn(strings.ToLower(name))]
	if a == nil {
		return nil, nil, false
	}
	return toAddrs(a.v4), toAddrs(a.v6), true
}

// Reverse returns the name ip answers to in PTR queries on network.
func (t *Table) Reverse(network string, ip netip.Addr) (string, bool) {
	z := t.zone(network)
	if z == nil {
		return "", false
	}
	rev, err := dns.ReverseAddr(ip.Unmap().String())
	if err != nil {
		return "", false
	}
	name, ok := z.ptr[rev]
	return strings.TrimSuffix(name, "."), ok
}

// Networks lists the networks that have at least one running endpoint,
// sorted.
func (t *Table) Networks() []string {
	if t == nil {
		return nil
	}
	out := make([]string, 0, len(t.nets))
	for n := range t.nets {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Names lists the names network answers to, sorted, each with its trailing
// dot, for status displays.
func (t *Table) Names(network string) []string {
	z := t.zone(network)
	if z == nil {
		return nil
	}
	out := make([]string, 0, len(z.hosts))
	for n := range z.hosts {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Len returns how many names network answers to.
func (t *Table) Len(network string) int {
	if z := t.zone(network); z != nil {
		return len(z.hosts)
	}
	return 0
}

func (t *Table) zone(network string) *zone {
	if t == nil {
		return nil
	}
	return t.nets[network]
}

func toAddrs(ips []net.IP) []netip.Addr {
	out := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		a, _ := netip.AddrFromSlice(ip)
		out = append(out, a)
	}
	return out
}
