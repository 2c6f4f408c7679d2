package ctrd

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// An attachment made of the bridge plugin with host-local leases (every
// attachment on a network with subnet rules, the primary one with the
// portmap plugin after them when the container publishes ports) is
// attached and detached in this process; portmap still runs as a plugin
// (portmap_chain.go). Each of the bridge and host-local plugins is a
// process to start and reap per container, on ADD and on DEL, and perf
// showed where that goes on this machine: the plugins' own CPU was a tenth
// of a cold `up` of 30 services, and reaping them (the kernel's
// release_task invalidating each child's /proc entries, contended while
// runc and the shims do the same) three quarters of the stack process's
// CPU in CNI. What the plugins do for such a conflist is small, and is
// done here the same way, on the same files, so that either side can undo
// what the other did: a container attached in process and detached by the
// plugins, or the reverse, leaves nothing.
//
// ADD: the host end of a veth pair on the bridge (hairpin on), the other end
// in the netns under the attachment's name with a MAC address made of its
// IPv4 address (02:42:<address>, as Docker does, so that a reused address
// keeps its MAC in the neighbours' caches), arp_notify on; a host-local
// lease (cni_lease.go); the address, the link up, the routes via the
// gateway; IPv4 forwarding on. DEL: cni_del.go.
//
// Anything else, or anything unexpected — a missing bridge after a reboot,
// which the bridge plugin creates — goes to the plugins, after undoing
// what was done here.

// bridgeOnly is a conflist that the in-process path handles.
type bridgeOnly struct {
	network  string // the conflist's name: host-local's directory, libcni's cache key
	bridge   string
	hairpin  bool
	leaseDir string
	rng      leaseRange
	routes   []netip.Prefix // via rng.gateway
	// portmap is the portmap plugin's configuration when the attachment
	// publishes ports: it runs as a plugin, chained after the bridge done
	// here (portmap_chain.go).
	portmap []byte
}

// parseBridgeOnly accepts a conflist of the bridge plugin with isGateway
// and without ipMasq, and host-local with one IPv4 range, then portmap or
// nothing, and with no key it does not know: a key added to the conflist
// one day must not be ignored here.
func parseBridgeOnly(conflist []byte) (bridgeOnly, bool) {
	var conf struct {
		CNIVersion string            `json:"cniVersion"`
		Name       string            `json:"name"`
		Plugins    []json.RawMessage `json:"plugins"`
	}
	if json.Unmarshal(conflist, &conf) != nil || len(conf.Plugins) < 1 || len(conf.Plugins) > 2 || conf.Name == "" {
		return bridgeOnly{}, false
	}
	var portmap []byte
	if len(conf.Plugins) == 2 {
		pm, ok := portmapPlugin(conf.Plugins[1], conf.Name, conf.CNIVersion)
		if !ok {
			return bridgeOnly{}, false
		}
		portmap = pm
	}
	var p struct {
		Type         string          `json:"type"`
		Bridge       string          `json:"bridge"`
		IsGateway    bool            `json:"isGateway"`
		IPMasq       bool            `json:"ipMasq"`
		HairpinMode  bool            `json:"hairpinMode"`
		Capabilities map[string]bool `json:"capabilities"`
		IPAM         struct {
			Type    string            `json:"type"`
			DataDir string            `json:"dataDir"`
			Ranges  [][]conflistRange `json:"ranges"`
			Routes  []struct {
				Dst string `json:"dst"`
			} `json:"routes"`
		} `json:"ipam"`
	}
	if decodeStrict(conf.Plugins[0], &p) != nil || p.Type != "bridge" || p.Bridge == "" || !p.IsGateway || p.IPMasq {
		return bridgeOnly{}, false
	}
	ipam := p.IPAM
	if ipam.Type != "host-local" || ipam.DataDir == "" || len(ipam.Ranges) != 1 || len(ipam.Ranges[0]) != 1 {
		return bridgeOnly{}, false
	}
	rng, ok := parseLeaseRange(ipam.Ranges[0][0])
	if !ok {
		return bridgeOnly{}, false
	}
	b := bridgeOnly{
		network: conf.Name, bridge: p.Bridge, hairpin: p.HairpinMode,
		leaseDir: filepath.Join(ipam.DataDir, conf.Name), rng: rng, portmap: portmap,
	}
	for _, r := range ipam.Routes {
		dst, err := netip.ParsePrefix(r.Dst)
		if err != nil || !dst.Addr().Is4() {
			return bridgeOnly{}, false
		}
		b.routes = append(b.routes, dst.Masked())
	}
	return b, true
}

// decodeStrict decodes data into v and fails on a key v has no field for.
func decodeStrict(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	return d.Decode(v)
}

// errNoBridge: the bridge is missing or down (after a reboot); the bridge
// plugin creates it.
var errNoBridge = errors.New("the network's bridge is missing or down")

// addInProcess attaches the container's netns at nsPath as the bridge and
// host-local plugins would, and fills in the attachment's address. When it
// fails, nothing of it is left (or the error wraps errNotUndone).
func (c *Client) addInProcess(b bridgeOnly, id, nsPath string, a *attachment) error {
	host, err := rtnlHere()
	if err != nil {
		return err
	}
	defer host.close()
	brIndex, brFlags, err := host.linkByName(b.bridge)
	if err != nil || brFlags&unix.IFF_UP == 0 {
		return fmt.Errorf("%s: %w", b.bridge, errNoBridge)
	}
	if err := checkGatewayOn(b.bridge, brIndex, b.rng.gateway); err != nil {
		return err
	}
	requested, err := requestedIPv4(a.CapArgs)
	if err != nil {
		return err
	}
	addr, err := reserveLease(b.leaseDir, id, a.IfName, b.rng, requested)
	if err != nil {
		return err
	}
	if err := plugVeth(host, b, brIndex, nsPath, a.IfName, addr); err != nil {
		// Nothing of it stays: the interface takes its veth with it, and
		// the lease is released.
		if uerr := c.delInProcess(b, id, nsPath, a.IfName); uerr != nil {
			return errors.Join(err, fmt.Errorf("%w: %w", errNotUndone, uerr))
		}
		return err
	}
	a.IPv4, a.Gateway = addr.String(), b.rng.gateway.String()
	return nil
}

// errNotUndone: an attach in process failed and what it did could not be
// undone, so the plugins do not try after it.
var errNotUndone = errors.New("could not undo the attach")

// plugVeth connects the netns at nsPath to the bridge with addr on ifName.
func plugVeth(host *rtnl, b bridgeOnly, brIndex int32, nsPath, ifName string, addr netip.Addr) error {
	ns, err := os.Open(nsPath)
	if err != nil {
		return err
	}
	defer ns.Close()
	if err := addVethTo(host, b.bridge, brIndex, ifName, int(ns.Fd()), macFor(addr)); err != nil {
		return err
	}
	ctr, err := rtnlIn(nsPath, func() error {
		// What the bridge plugin sets, and ignores failing to set.
		_ = os.WriteFile("/proc/sys/net/ipv4/conf/"+ifName+"/arp_notify", []byte("1"), 0o644)
		_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+ifName+"/accept_dad", []byte("0"), 0o644)
		return nil
	})
	if err != nil {
		return err
	}
	defer ctr.close()
	index, _, err := ctr.linkByName(ifName)
	if err != nil {
		return fmt.Errorf("%s in %s: %w", ifName, nsPath, err)
	}
	if err := ctr.addAddress(index, netip.PrefixFrom(addr, b.rng.subnet.Bits())); err != nil {
		return fmt.Errorf("address %s on %s: %w", addr, ifName, err)
	}
	if err := ctr.setUp(index); err != nil {
		return fmt.Errorf("%s up: %w", ifName, err)
	}
	for _, dst := range b.routes {
		if err := ctr.addRoute(dst, b.rng.gateway, index); err != nil {
			return fmt.Errorf("route %s via %s: %w", dst, b.rng.gateway, err)
		}
	}
	return ensureIPv4Forwarding()
}

// addVethTo creates the pair with a random host name ("veth" and 8 hex
// digits, as the bridge plugin names it), trying another on a clash, and
// turns hairpin on for the host end.
func addVethTo(host *rtnl, bridge string, brIndex int32, ifName string, nsFD int, mac net.HardwareAddr) error {
	for range 3 {
		var rnd [4]byte
		if _, err := rand.Read(rnd[:]); err != nil {
			return err
		}
		name := "veth" + hex.EncodeToString(rnd[:])
		err := host.addVeth(name, brIndex, ifName, nsFD, mac)
		if errors.Is(err, unix.EEXIST) {
			// The name is taken on the host, or ifName in the netns: the
			// latter fails again, and the plugins report it.
			continue
		}
		if err != nil {
			return fmt.Errorf("veth %s on %s: %w", name, bridge, err)
		}
		if err := os.WriteFile("/sys/class/net/"+name+"/brport/hairpin_mode", []byte("1"), 0o644); err != nil {
			return fmt.Errorf("hairpin on %s: %w", name, err)
		}
		return nil
	}
	return fmt.Errorf("veth on %s: %w", bridge, unix.EEXIST)
}

// macFor is the MAC address Docker gives an IPv4 address: 02:42 then its
// four bytes.
func macFor(addr netip.Addr) net.HardwareAddr {
	a := addr.As4()
	return net.HardwareAddr{0x02, 0x42, a[0], a[1], a[2], a[3]}
}

// requestedIPv4 is the address the "ips" capability asks for (a
// service's ipv4_address), if any.
func requestedIPv4(capArgs map[string]any) (netip.Addr, error) {
	var ips []string
	switch v := capArgs["ips"].(type) {
	case nil:
		return netip.Addr{}, nil
	case []string:
		ips = v
	case []any:
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				return netip.Addr{}, fmt.Errorf("ips: %v is not an address", x)
			}
			ips = append(ips, s)
		}
	default:
		return netip.Addr{}, fmt.Errorf("ips: %v is not a list of addresses", v)
	}
	if len(ips) != 1 {
		return netip.Addr{}, fmt.Errorf("ips: want one address, got %q", ips)
	}
	s, _, _ := strings.Cut(ips[0], "/")
	addr, err := netip.ParseAddr(s)
	if err != nil || !addr.Is4() {
		return netip.Addr{}, fmt.Errorf("ips: %q is not an IPv4 address", ips[0])
	}
	return addr, nil
}

// gatewaysSeen holds the bridges (by name and index: a bridge made again
// has another) this process has seen holding their gateway address. The
// bridge plugin adds a missing one, so it is checked, but once a process
// and not for every container.
var gatewaysSeen sync.Map

func checkGatewayOn(bridge string, index int32, gw netip.Addr) error {
	key := fmt.Sprintf("%s %d %s", bridge, index, gw)
	if _, ok := gatewaysSeen.Load(key); ok {
		return nil
	}
	ifi, err := net.InterfaceByName(bridge)
	if err != nil {
		return fmt.Errorf("%s: %w", bridge, errNoBridge)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return err
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if got, ok := netip.AddrFromSlice(n.IP); ok && got.Unmap() == gw {
				gatewaysSeen.Store(key, true)
				return nil
			}
		}
	}
	return fmt.Errorf("%s lacks its gateway address %s: %w", bridge, gw, errNoBridge)
}

// ensureIPv4Forwarding turns IPv4 forwarding on, as the bridge plugin of a
// gateway does at each ADD (a daemon that restarts containers lives long).
func ensureIPv4Forwarding() error {
	const path = "/proc/sys/net/ipv4/ip_forward"
	if cur, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(cur)) == "1" {
		return nil
	}
	return os.WriteFile(path, []byte("1"), 0o644)
}

// u32 and fromU32 turn an IPv4 address into a number and back.
func u32(a netip.Addr) uint32 {
	b := a.As4()
	return binary.BigEndian.Uint32(b[:])
}

func fromU32(v uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}
