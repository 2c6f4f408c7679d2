package ctrd

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/stackdev/stack/engine"
)

// ownsNetNS reports whether the container gets its own pre-created netns
// (it attaches to networks) rather than none, the host's or another's.
func ownsNetNS(spec engine.ContainerSpec) bool {
	m := spec.Network.Mode
	return (m == "" || m == "bridge" || m == "default") && len(spec.Network.Networks) > 0
}

// setupNetwork creates the netns and runs CNI ADD for each network, saving
// the run record before each step so that teardownNetwork can undo a
// partial setup.
func (c *Client) setupNetwork(ctx context.Context, id string, spec engine.ContainerSpec, rr *runRecord) error {
	if err := c.prepareNetwork(id, spec, rr); err != nil {
		return err
	}
	return c.attachNetworks(ctx, id, spec, rr)
}

// prepareNetwork chooses the ports and attachments, records them, and
// creates the netns: what the task's spec needs to exist.
func (c *Client) prepareNetwork(id string, spec engine.ContainerSpec, rr *runRecord) error {
	if !ownsNetNS(spec) {
		rr.Ports = nil
		return nil
	}
	ports, err := c.resolvePorts(id, spec)
	if err != nil {
		return err
	}
	atts, err := c.planAttachments(spec, ports)
	if err != nil {
		return err
	}
	rr.NetNS, rr.Attachments, rr.Ports = netnsPath(id), atts, ports
	if err := c.saveRun(id, *rr); err != nil {
		return err
	}
	return createNetNS(rr.NetNS)
}

// attachNetworks checks each network's own rules (once a process), runs
// CNI ADD for each planned attachment, recording each, then puts stack's
// FORWARD jumps back first if a network of an earlier version ran the CNI
// firewall plugin, and writes /etc/hosts.
func (c *Client) attachNetworks(ctx context.Context, id string, spec engine.ContainerSpec, rr *runRecord) error {
	if !ownsNetNS(spec) {
		return nil
	}
	for _, a := range rr.Attachments {
		if err := c.ensureBridgeRules(ctx, a.Network); err != nil {
			return err
		}
	}
	for i := range rr.Attachments {
		if err := c.cniAdd(ctx, id, rr.NetNS, &rr.Attachments[i]); err != nil {
			return err
		}
		if err := c.saveRun(id, *rr); err != nil {
			return err
		}
	}
	if slices.ContainsFunc(rr.Attachments, func(a attachment) bool { return !a.SubnetRules }) {
		if err := isolationFirst(ctx); err != nil {
			return err
		}
	}
	return c.writeHosts(id, spec, rr.Attachments)
}

// teardownNetwork runs CNI DEL for each recorded attachment while the netns
// still exists, then removes the netns. Each step is recorded, so it can be
// called again after a crash.
func (c *Client) teardownNetwork(ctx context.Context, id string) error {
	rr, err := c.loadRun(id)
	if err != nil {
		return err
	}
	ns := netnsPath(id)
	nsArg := ns
	if !netnsExists(ns) {
		nsArg = ""
	}
	for len(rr.Attachments) > 0 {
		last := rr.Attachments[len(rr.Attachments)-1]
		if err := c.cniDel(ctx, id, nsArg, last); err != nil {
			return err
		}
		if nsArg == "" && !last.SubnetRules {
			// Without the netns the bridge plugin cannot learn the
			// address its masquerade rule names, and leaves it (a
			// network with SubnetRules has no rule per container).
			if err := removeMasqRules(ctx, last.Network, id); err != nil {
				return err
			}
		}
		rr.Attachments = rr.Attachments[:len(rr.Attachments)-1]
		if err := c.saveRun(id, rr); err != nil {
			return err
		}
	}
	if err := removeNetNS(ns); err != nil {
		return err
	}
	if rr.NetNS == "" {
		return nil
	}
	rr.NetNS = ""
	return c.saveRun(id, rr)
}

// resolvePorts gives each published port without a host port a free one,
// and checks that the others are free: not published by another stack
// container and not bound by a host process.
func (c *Client) resolvePorts(id string, spec engine.ContainerSpec) ([]engine.PortBinding, error) {
	ports := append([]engine.PortBinding(nil), spec.Network.Ports...)
	// A port the kernel has just handed out is not probed again: it was
	// free, and another socket could take it between the two binds. It is
	// still checked against the ports other stack containers publish,
	// which nothing binds.
	picked := make([]bool, len(ports))
	for i := range ports {
		if ports[i].Protocol == "" {
			ports[i].Protocol = "tcp"
		}
		if ports[i].HostPort == 0 {
			p, err := freePort(ports[i])
			if err != nil {
				return nil, fmt.Errorf("publish %d/%s: %w", ports[i].ContainerPort, ports[i].Protocol, err)
			}
			ports[i].HostPort, picked[i] = p, true
		}
	}
	if err := c.checkPorts(id, describe(spec), ports, picked); err != nil {
		return nil, err
	}
	return ports, nil
}

// CheckPorts reports the first of the spec's published ports that is
// already taken on the host: published by another running stack container
// (other than the IDs in except, such as the container it replaces) or bound
// by a process. The error names the service, the container and the port, so
// the CLI can call it for every container it will start before changing
// anything.
func (c *Client) CheckPorts(spec engine.ContainerSpec, except ...string) error {
	return c.checkPorts(strings.Join(except, ","), describe(spec), spec.Network.Ports, nil)
}

func describe(spec engine.ContainerSpec) string {
	if spec.Service != "" {
		return fmt.Sprintf("service %s (container %s)", spec.Service, spec.Name)
	}
	return "container " + spec.Name
}

// checkPorts is CheckPorts on resolved ports. picked marks the ones the
// kernel has just handed out (freePort), which are not bound again; nil
// probes every port.
func (c *Client) checkPorts(except, who string, ports []engine.PortBinding, picked []bool) error {
	if !slices.ContainsFunc(ports, func(p engine.PortBinding) bool { return p.HostPort != 0 }) {
		return nil // nothing to compare: no need to read every run record
	}
	recs, err := c.listRunRecords()
	if err != nil {
		return err
	}
	for i, p := range ports {
		if p.HostPort == 0 {
			continue
		}
		for otherID, rr := range recs {
			if strings.Contains(except, otherID) || rr.NetNS == "" {
				continue
			}
			for _, q := range rr.Ports {
				if samePort(p, q) {
					return fmt.Errorf("%s: port %s is already published by container %s", who, portString(p), otherID[:12])
				}
			}
		}
		if i < len(picked) && picked[i] {
			continue
		}
		if err := probePort(p); err != nil {
			return fmt.Errorf("%s: port %s is already in use on the host: %w", who, portString(p), err)
		}
	}
	return nil
}

func samePort(a, b engine.PortBinding) bool {
	if a.HostPort != b.HostPort || protoOf(a) != protoOf(b) {
		return false
	}
	return anyAddr(a.HostIP) || anyAddr(b.HostIP) || a.HostIP == b.HostIP
}

func anyAddr(ip string) bool { return ip == "" || ip == "0.0.0.0" || ip == "::" }

func protoOf(p engine.PortBinding) string {
	if p.Protocol == "" {
		return "tcp"
	}
	return p.Protocol
}

func portString(p engine.PortBinding) string {
	host := p.HostIP
	if host == "" {
		host = "0.0.0.0"
	}
	return net.JoinHostPort(host, strconv.Itoa(int(p.HostPort))) + "/" + protoOf(p)
}

// probePort binds the host address and port briefly.
func probePort(p engine.PortBinding) error {
	addr := net.JoinHostPort(p.HostIP, strconv.Itoa(int(p.HostPort)))
	if protoOf(p) == "udp" {
		l, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return err
		}
		return l.Close()
	}
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		return err
	}
	return l.Close()
}

// freePort asks the kernel for an unused port on the binding's address.
func freePort(p engine.PortBinding) (uint16, error) {
	addr := net.JoinHostPort(p.HostIP, "0")
	if protoOf(p) == "udp" {
		l, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return 0, err
		}
		defer l.Close()
		return portOf(l.LocalAddr().String())
	}
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return portOf(l.Addr().String())
}

func portOf(addr string) (uint16, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return 0, err
	}
	return ap.Port(), nil
}
