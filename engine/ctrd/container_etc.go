package ctrd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/stackdev/stack/engine"
)

// etcMounts writes the container's resolv.conf, hosts and hostname and
// bind-mounts them. With the host's network the host's files are used; a
// container sharing another's network uses that one's files.
func (c *Client) etcMounts(ctx context.Context, id string, spec engine.ContainerSpec, hostNS []specs.LinuxNamespaceType) ([]specs.Mount, error) {
	mode := spec.Network.Mode
	switch {
	case mode == "host":
		return []specs.Mount{
			etcBind("/etc/hosts", "/etc/hosts"),
			etcBind("/etc/resolv.conf", "/etc/resolv.conf"),
		}, nil
	case strings.HasPrefix(mode, "container:"):
		target, err := c.containerByName(ctx, strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return nil, err
		}
		return []specs.Mount{
			etcBind(c.containerDir(target, "hosts"), "/etc/hosts"),
			etcBind(c.containerDir(target, "resolv.conf"), "/etc/resolv.conf"),
		}, nil
	}
	if err := os.WriteFile(c.containerDir(id, "resolv.conf"), c.resolvConf(spec), 0o644); err != nil {
		return nil, err
	}
	if err := c.writeHosts(id, spec, nil); err != nil {
		return nil, err
	}
	host := containerHostname(id, spec)
	if err := os.WriteFile(c.containerDir(id, "hostname"), []byte(host+"\n"), 0o644); err != nil {
		return nil, err
	}
	return []specs.Mount{
		etcBind(c.containerDir(id, "hosts"), "/etc/hosts"),
		etcBind(c.containerDir(id, "resolv.conf"), "/etc/resolv.conf"),
		etcBind(c.containerDir(id, "hostname"), "/etc/hostname"),
	}, nil
}

func etcBind(src, dst string) specs.Mount {
	return specs.Mount{Type: "bind", Source: src, Destination: dst, Options: []string{"rbind", "rw", "rprivate"}}
}

// resolvConf points a container at the stack daemon's DNS server on the
// gateway of its first network, with the host's search domains and ndots:0
// (single names are asked as they are), as Docker does with 127.0.0.11. The
// service's dns servers replace the gateway, like Docker's --dns. A
// container without a network of its own (network_mode none) gets no
// nameserver.
func (c *Client) resolvConf(spec engine.ContainerSpec) []byte {
	n := spec.Network
	_, hsearch, hopts := hostResolv()
	search := n.DNSSearch
	if len(search) == 0 {
		search = hsearch
	}
	servers, opts := n.DNS, n.DNSOptions
	switch {
	case len(servers) > 0:
		if len(opts) == 0 {
			opts = hopts
		}
	case !ownsNetNS(spec):
		servers, search, opts = nil, nil, nil
	default:
		if gw := c.hostGateway(spec, nil); gw != "" {
			servers = []string{gw}
		}
		opts = withNdots0(opts)
	}
	var b bytes.Buffer
	if len(servers) == 0 {
		b.WriteString("# network_mode none: no DNS server\n")
	}
	for _, s := range servers {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(search, " "))
	}
	if len(opts) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(opts, " "))
	}
	return b.Bytes()
}

// withNdots0 adds ndots:0 unless the service sets ndots itself.
func withNdots0(opts []string) []string {
	for _, o := range opts {
		if strings.HasPrefix(o, "ndots:") {
			return opts
		}
	}
	return append([]string{"ndots:0"}, opts...)
}

func hostResolv() (servers, search, opts []string) {
	data, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return nil, nil, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			if a, err := netip.ParseAddr(f[1]); err == nil && !a.IsLoopback() {
				servers = append(servers, f[1])
			}
		case "search":
			search = f[1:]
		case "options":
			opts = f[1:]
		}
	}
	return servers, search, opts
}

// writeHosts writes /etc/hosts in place (truncate and write), so a running
// container sees the update through its bind mount.
func (c *Client) writeHosts(id string, spec engine.ContainerSpec, atts []attachment) error {
	var b bytes.Buffer
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	host := containerHostname(id, spec)
	names := host
	if spec.Process.Domainname != "" {
		names = host + "." + spec.Process.Domainname + " " + host
	}
	if spec.Name != "" && spec.Name != host {
		names += " " + spec.Name // its own name answers without a DNS query
	}
	for _, a := range atts {
		if a.IPv4 != "" {
			fmt.Fprintf(&b, "%s\t%s\n", a.IPv4, names)
			break
		}
	}
	gateway := c.hostGateway(spec, atts)
	for _, eh := range spec.Network.ExtraHosts {
		name, ip, ok := splitExtraHost(eh)
		if !ok {
			return fmt.Errorf("extra_hosts %q: want HOST:IP", eh)
		}
		if ip == "host-gateway" {
			if gateway == "" {
				return fmt.Errorf("extra_hosts %q: host-gateway needs a network", eh)
			}
			ip = gateway
		}
		fmt.Fprintf(&b, "%s\t%s\n", ip, name)
	}
	f, err := os.OpenFile(c.containerDir(id, "hosts"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// hostGateway is the first network's gateway: the host as seen from the
// container.
func (c *Client) hostGateway(spec engine.ContainerSpec, atts []attachment) string {
	for _, a := range atts {
		if a.Gateway != "" {
			return a.Gateway
		}
	}
	if len(spec.Network.Networks) > 0 {
		if rec, err := c.loadNetwork(spec.Network.Networks[0].Network); err == nil {
			return rec.Gateway
		}
	}
	return ""
}

// splitExtraHost accepts "host:ip" and "host=ip"; the IP may be IPv6.
func splitExtraHost(s string) (name, ip string, ok bool) {
	i := strings.IndexAny(s, ":=")
	if i <= 0 || i == len(s)-1 {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}
