package ctrd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/stackdev/stack/engine"
)

// attachment is one container interface on one network, recorded before
// CNI ADD so that DEL can always run with the same configuration.
type attachment struct {
	Network  string         `json:"network"`
	IfName   string         `json:"ifName"`
	IPv4     string         `json:"ipv4,omitempty"` // address without prefix
	Gateway  string         `json:"gateway,omitempty"`
	Conflist []byte         `json:"conflist"`
	CapArgs  map[string]any `json:"capArgs,omitempty"`
	// SubnetRules: the network's rules are per subnet, and Conflist has no
	// firewall plugin (networkRecord.SubnetRules). False in the records of
	// earlier versions.
	SubnetRules bool `json:"subnetRules,omitempty"`
}

// attachOpts says how one attachment differs from the network's defaults.
type attachOpts struct {
	primary bool // default route and published ports go through it
	ipv4    string
	ports   []engine.PortBinding
}

// publishes says whether the attachment carries the container's published
// ports: only the primary one does.
func (o attachOpts) publishes() bool { return o.primary && len(o.ports) > 0 }

var cniOnce struct {
	sync.Mutex
	cfg map[string]*libcni.CNIConfig
}

// cni returns the libcni runner with its result cache under the state
// directory, so nothing is written to /var/lib/cni.
func (c *Client) cni() *libcni.CNIConfig {
	cniOnce.Lock()
	defer cniOnce.Unlock()
	cache := c.stateDir(dirNetworks, dirCNICache)
	if cniOnce.cfg == nil {
		cniOnce.cfg = map[string]*libcni.CNIConfig{}
	}
	if cfg, ok := cniOnce.cfg[cache]; ok {
		return cfg
	}
	cfg := libcni.NewCNIConfigWithCacheDir(c.opts.CNIPluginDirs, cache, nil)
	cniOnce.cfg[cache] = cfg
	return cfg
}

// conflist is the CNI configuration for one attachment: bridge with
// host-local leases under the state directory, and portmap when the
// attachment publishes ports. portmap does nothing for an attachment without
// port mappings, on ADD and on DEL alike, yet each run is a process to start
// and reap: two per container that publishes nothing. The attachment keeps
// its conflist, so DEL runs the plugins its ADD ran. A network with
// SubnetRules masquerades and accepts forwarded traffic with rules of its
// own; one made by an earlier version has the bridge plugin's ipMasq and the
// firewall plugin do it per container.
func (r networkRecord) conflist(c *Client, o attachOpts) ([]byte, error) {
	rng := map[string]any{"subnet": r.Subnet, "gateway": r.Gateway}
	// ip_range bounds the addresses given out, not a container's own
	// ipv4_address, which may be anywhere in the subnet (as with Docker);
	// both kinds of lease share one directory, so neither is given twice.
	if r.IPRange != "" && o.ipv4 == "" {
		if err := addRangeBounds(rng, r.IPRange, r.Subnet); err != nil {
			return nil, fmt.Errorf("network %s: %w", r.Name, err)
		}
	}
	routes := []any{}
	if o.primary && !r.Internal {
		routes = append(routes, map[string]any{"dst": "0.0.0.0/0"})
	}
	plugins := []any{
		map[string]any{
			"type": "bridge", "bridge": r.Bridge, "isGateway": true,
			"ipMasq": !r.Internal && !r.SubnetRules, "hairpinMode": true,
			"capabilities": map[string]bool{"ips": true},
			"ipam": map[string]any{
				"type": "host-local", "dataDir": c.stateDir(dirNetworks, dirIPAM),
				"ranges": [][]any{{rng}}, "routes": routes,
			},
		},
	}
	if o.publishes() {
		plugins = append(plugins, map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}})
	}
	if !r.SubnetRules {
		plugins = append(plugins, map[string]any{"type": "firewall"})
	}
	return json.Marshal(map[string]any{"cniVersion": "1.0.0", "name": r.Name, "plugins": plugins})
}

// addRangeBounds turns an ip_range CIDR into host-local's rangeStart/End,
// within the subnet's usable addresses: host-local gives out its range's
// bounds as they are, and an ip_range that reaches the subnet's first or
// last address would hand a container the network or broadcast address.
func addRangeBounds(rng map[string]any, cidr, subnet string) error {
	p, err := netip.ParsePrefix(cidr)
	if err != nil || !p.Addr().Is4() {
		return fmt.Errorf("ip_range %q is not an IPv4 CIDR", cidr)
	}
	sn, err := netip.ParsePrefix(subnet)
	if err != nil || !sn.Addr().Is4() {
		return fmt.Errorf("subnet %q is not an IPv4 CIDR", subnet)
	}
	p, sn = p.Masked(), sn.Masked()
	start, end := u32(p.Addr()), u32(broadcastOf(p))
	if sn.Bits() <= 30 {
		start = max(start, u32(sn.Addr())+1)
		end = min(end, u32(broadcastOf(sn))-1)
	}
	if end < start {
		return fmt.Errorf("ip_range %s has no usable address in subnet %s", cidr, subnet)
	}
	rng["rangeStart"] = fromU32(start).String()
	rng["rangeEnd"] = fromU32(end).String()
	return nil
}

// capArgs are the runtime capability arguments for one attachment.
func capArgs(o attachOpts, subnetBits int) map[string]any {
	args := map[string]any{}
	if o.ipv4 != "" {
		args["ips"] = []string{fmt.Sprintf("%s/%d", o.ipv4, subnetBits)}
	}
	if o.publishes() {
		var pm []map[string]any
		for _, p := range o.ports {
			proto := p.Protocol
			if proto == "" {
				proto = "tcp"
			}
			pm = append(pm, map[string]any{
				"hostPort": int(p.HostPort), "containerPort": int(p.ContainerPort),
				"protocol": proto, "hostIP": p.HostIP,
			})
		}
		args["portMappings"] = pm
	}
	return args
}

func (c *Client) runtimeConf(id, nsPath string, a attachment) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID:    id,
		NetNS:          nsPath,
		IfName:         a.IfName,
		Args:           [][2]string{{"IgnoreUnknown", "1"}},
		CapabilityArgs: a.CapArgs,
	}
}

// cniAdd runs ADD for one attachment and fills in its address.
func (c *Client) cniAdd(ctx context.Context, id, nsPath string, a *attachment) error {
	if b, ok := parseBridgeOnly(a.Conflist); ok {
		// cni_inprocess.go; the plugins try after a failure they may
		// mend (they create a missing bridge).
		tryPlugins, err := c.attachInProcess(ctx, b, id, nsPath, a)
		if err == nil {
			return nil
		}
		if !tryPlugins {
			return fmt.Errorf("attach to network %s: %w", a.Network, err)
		}
	}
	list, err := libcni.NetworkConfFromBytes(a.Conflist)
	if err != nil {
		return fmt.Errorf("network %s: CNI config: %w", a.Network, err)
	}
	res, err := c.cni().AddNetworkList(ctx, list, c.runtimeConf(id, nsPath, *a))
	if err != nil {
		return fmt.Errorf("attach to network %s: %w", a.Network, err)
	}
	r, err := current.NewResultFromResult(res)
	if err != nil {
		return fmt.Errorf("attach to network %s: CNI result: %w", a.Network, err)
	}
	for _, ip := range r.IPs {
		if ip.Address.IP.To4() != nil {
			a.IPv4 = ip.Address.IP.String()
			if ip.Gateway != nil {
				a.Gateway = ip.Gateway.String()
			}
		}
	}
	return nil
}

// cniDel runs DEL for one attachment. DEL of something already gone
// succeeds, as CNI requires.
func (c *Client) cniDel(ctx context.Context, id, nsPath string, a attachment) error {
	if b, ok := parseBridgeOnly(a.Conflist); ok && c.detachInProcess(ctx, b, id, nsPath, a) == nil {
		return nil // cni_inprocess.go; on failure the plugins' DEL runs
	}
	list, err := libcni.NetworkConfFromBytes(a.Conflist)
	if err != nil {
		return fmt.Errorf("network %s: CNI config: %w", a.Network, err)
	}
	if err := c.cni().DelNetworkList(ctx, list, c.runtimeConf(id, nsPath, a)); err != nil {
		if ferr := c.delWithoutMasq(ctx, id, nsPath, a); ferr != nil {
			return fmt.Errorf("detach from network %s: %w", a.Network, errors.Join(err, ferr))
		}
	}
	return nil
}

// planAttachments builds the attachments for a container spec, in priority
// order: eth0 on the first network, which also carries the default route and
// the published ports.
func (c *Client) planAttachments(spec engine.ContainerSpec, ports []engine.PortBinding) ([]attachment, error) {
	var out []attachment
	for i, na := range spec.Network.Networks {
		rec, err := c.loadNetwork(na.Network)
		if err != nil {
			return nil, fmt.Errorf("network %s: %w (create it first)", na.Network, err)
		}
		o := attachOpts{primary: i == 0, ipv4: na.IPv4Address, ports: ports}
		conf, err := rec.conflist(c, o)
		if err != nil {
			return nil, err
		}
		bits := 24
		if p, err := netip.ParsePrefix(rec.Subnet); err == nil {
			bits = p.Bits()
		}
		out = append(out, attachment{
			Network: na.Network, IfName: fmt.Sprintf("eth%d", i),
			Conflist: conf, CapArgs: capArgs(o, bits), SubnetRules: rec.SubnetRules,
		})
	}
	return out, nil
}

func networkNames(as []attachment) string {
	var names []string
	for _, a := range as {
		names = append(names, a.Network)
	}
	return strings.Join(names, ", ")
}

// delWithoutMasq is the fallback when DEL fails: the bridge plugin fails
// (iptables exit status 2) when the container's masquerade chain is already
// gone, as after a partial ADD or someone else's cleanup, and would then
// fail forever. DEL again without ipMasq, then delete whatever masquerade
// rule still names the container.
func (c *Client) delWithoutMasq(ctx context.Context, id, nsPath string, a attachment) error {
	var conf map[string]any
	if err := json.Unmarshal(a.Conflist, &conf); err != nil {
		return err
	}
	plugins, _ := conf["plugins"].([]any)
	for _, p := range plugins {
		if m, ok := p.(map[string]any); ok && m["type"] == "bridge" {
			m["ipMasq"] = false
		}
	}
	data, err := json.Marshal(conf)
	if err != nil {
		return err
	}
	list, err := libcni.NetworkConfFromBytes(data)
	if err != nil {
		return err
	}
	if err := c.cni().DelNetworkList(ctx, list, c.runtimeConf(id, nsPath, a)); err != nil {
		return err
	}
	return removeMasqRules(ctx, a.Network, id)
}
