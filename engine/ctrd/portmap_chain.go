package ctrd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
)

// An attachment that publishes ports has the portmap plugin after the
// bridge. With the bridge done in process, portmap still runs as a plugin
// (its iptables chains are its own to make and remove), given as its
// previous result what the bridge plugin would have returned of use to
// it: the container's interface in the netns and its address.

// attachInProcess is ADD in process, then portmap's when the attachment
// publishes ports. When it fails, nothing of it is left, and it says
// whether the plugins may try: not after host-local's refusal, which they
// would repeat, nor when what was done could not be undone.
func (c *Client) attachInProcess(ctx context.Context, b bridgeOnly, id, nsPath string, a *attachment) (tryPlugins bool, err error) {
	if err := c.addInProcess(b, id, nsPath, a); err != nil {
		var refused leaseRefused
		return !errors.As(err, &refused) && !errors.Is(err, errNotUndone), err
	}
	if b.portmap == nil {
		return false, nil
	}
	if err := c.portmapAdd(ctx, b, id, nsPath, *a); err != nil {
		if uerr := c.detachInProcess(ctx, b, id, nsPath, *a); uerr != nil {
			return false, errors.Join(err, fmt.Errorf("%w: %w", errNotUndone, uerr))
		}
		a.IPv4, a.Gateway = "", ""
		return true, err
	}
	return false, nil
}

// detachInProcess is portmap's DEL when the attachment publishes ports
// (ADD's reverse order), then DEL in process.
func (c *Client) detachInProcess(ctx context.Context, b bridgeOnly, id, nsPath string, a attachment) error {
	if b.portmap != nil {
		if err := c.portmapDel(ctx, b, id, nsPath, a); err != nil {
			return err
		}
	}
	return c.delInProcess(b, id, nsPath, a.IfName)
}

// portmapPlugin is the portmap plugin of a conflist as a configuration of
// its own (with the list's name and version), if it is exactly what
// conflist writes: the type and the portMappings capability.
func portmapPlugin(raw json.RawMessage, name, cniVersion string) ([]byte, bool) {
	var p struct {
		Type         string          `json:"type"`
		Capabilities map[string]bool `json:"capabilities"`
	}
	if decodeStrict(raw, &p) != nil || p.Type != "portmap" || len(p.Capabilities) != 1 || !p.Capabilities["portMappings"] {
		return nil, false
	}
	conf, err := json.Marshal(map[string]any{
		"cniVersion": cniVersion, "name": name, "type": "portmap",
		"capabilities": map[string]bool{"portMappings": true},
	})
	return conf, err == nil && cniVersion != ""
}

// portmapAdd runs portmap's ADD for an attachment attached in process.
func (c *Client) portmapAdd(ctx context.Context, b bridgeOnly, id, nsPath string, a attachment) error {
	addr, err := netip.ParseAddr(a.IPv4)
	if err != nil {
		return fmt.Errorf("portmap: the attachment has no address: %w", err)
	}
	idx := 0
	conf, err := libcni.NetworkPluginConfFromBytes(b.portmap)
	if err != nil {
		return err
	}
	// The result in the conflist's version: a plugin older than this
	// library refuses a newer one (Debian 12's portmap knows 1.0.0).
	prev := current.Result{
		CNIVersion: conf.Network.CNIVersion,
		Interfaces: []*current.Interface{{Name: a.IfName, Mac: macFor(addr).String(), Sandbox: nsPath}},
		IPs: []*current.IPConfig{{
			Interface: &idx,
			Address:   net.IPNet{IP: addr.AsSlice(), Mask: net.CIDRMask(b.rng.subnet.Bits(), 32)},
			Gateway:   b.rng.gateway.AsSlice(),
		}},
	}
	raw, err := json.Marshal(prev)
	if err != nil {
		return err
	}
	var prevResult map[string]any
	if err := json.Unmarshal(raw, &prevResult); err != nil {
		return err
	}
	if conf, err = libcni.InjectConf(conf, map[string]any{"prevResult": prevResult}); err != nil {
		return err
	}
	if _, err := c.cni().AddNetwork(ctx, conf, c.runtimeConf(id, nsPath, a)); err != nil {
		return fmt.Errorf("portmap: %w", err)
	}
	return nil
}

// portmapDel runs portmap's DEL for an attachment attached in process.
func (c *Client) portmapDel(ctx context.Context, b bridgeOnly, id, nsPath string, a attachment) error {
	conf, err := libcni.NetworkPluginConfFromBytes(b.portmap)
	if err != nil {
		return err
	}
	if err := c.cni().DelNetwork(ctx, conf, c.runtimeConf(id, nsPath, a)); err != nil {
		return fmt.Errorf("portmap: %w", err)
	}
	return nil
}
