package ctrd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containerd/errdefs"

	"github.com/stackdev/stack/engine"
)

// networksLock serialises subnet choices host-wide.
const networksLock = "/run/stack-networks.lock"

// networkRecord is what the state directory keeps for one network. The CNI
// configuration for an attachment is derived from it (see cni.go).
type networkRecord struct {
	Name       string `json:"name"`
	Project    string `json:"project,omitempty"`
	Key        string `json:"key,omitempty"`
	ConfigHash string `json:"configHash,omitempty"`
	Subnet     string `json:"subnet"`
	Gateway    string `json:"gateway"`
	IPRange    string `json:"ipRange,omitempty"`
	Bridge     string `json:"bridge"`
	Internal   bool   `json:"internal,omitempty"`
	// SubnetRules: the masquerade of what the network's containers send out
	// of the host (not for internal networks) and the acceptance of their
	// forwarded traffic are rules for the whole subnet (bridgeRules), added
	// with the bridge. It is false for networks made by earlier stack
	// versions, where the CNI bridge plugin (ipMasq) and firewall plugin
	// added them per container; their containers keep that.
	SubnetRules bool              `json:"subnetRules,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	Created     time.Time         `json:"created"`
	// Conflist is the CNI configuration of a primary attachment, for humans
	// and other CNI tools; attachments are built from the fields above.
	Conflist json.RawMessage `json:"conflist,omitempty"`
}

func (c *Client) networkPath(name string) string {
	return c.stateDir(dirNetworks, name+".json")
}

// CreateNetwork creates a bridge network: it chooses or checks the subnet,
// creates the bridge with the gateway address, adds its rules (isolation,
// forwarding, masquerade) and writes the record. An existing network wraps errdefs.ErrAlreadyExists; an
// external one must exist already.
func (c *Client) CreateNetwork(ctx context.Context, spec engine.NetworkSpec) (retErr error) {
	if err := checkName("network", spec.Name); err != nil {
		return err
	}
	if spec.Driver != "" && spec.Driver != "bridge" {
		return fmt.Errorf("network %s: driver %q is not supported (use bridge)", spec.Name, spec.Driver)
	}
	// Host-wide, not per state directory: subnets and bridges are shared by
	// every stack installation on the host.
	unlock, err := lockFile(ctx, networksLock, nil)
	if err != nil {
		return fmt.Errorf("create network %s: %w", spec.Name, err)
	}
	defer unlock()
	if _, err := c.loadNetwork(spec.Name); err == nil {
		return fmt.Errorf("network %s: %w", spec.Name, errdefs.ErrAlreadyExists)
	} else if !errdefs.IsNotFound(err) {
		return err
	}
	if spec.External {
		return fmt.Errorf("network %s is declared external but does not exist: create it first (another project, or `stack network create`): %w", spec.Name, errdefs.ErrNotFound)
	}
	rec, err := c.planNetwork(spec)
	if err != nil {
		return err
	}
	defer func() {
		if retErr != nil {
			_, _ = c.destroyBridge(context.WithoutCancel(ctx), rec)
		}
	}()
	if err := c.setupBridge(ctx, rec); err != nil {
		return fmt.Errorf("create network %s: %w", spec.Name, err)
	}
	rec.Conflist, _ = rec.conflist(c, attachOpts{primary: true})
	if err := writeJSON(c.networkPath(rec.Name), rec); err != nil {
		return fmt.Errorf("create network %s: write record: %w", spec.Name, err)
	}
	return nil
}

// planNetwork fills in the record: bridge name, subnet and gateway.
func (c *Client) planNetwork(spec engine.NetworkSpec) (networkRecord, error) {
	rec := networkRecord{
		Name: spec.Name, Project: spec.Project, Key: spec.Key, ConfigHash: spec.ConfigHash,
		Subnet: spec.Subnet, Gateway: spec.Gateway, IPRange: spec.IPRange,
		Internal: spec.Internal, Labels: spec.Labels, Created: time.Now().UTC(),
		Bridge: c.bridgeName(spec.Name), SubnetRules: true,
	}
	others, err := c.listNetworks()
	if err != nil {
		return rec, err
	}
	prefix, err := c.chooseSubnet(spec, others)
	if err != nil {
		return rec, err
	}
	rec.Subnet = prefix.String()
	if rec.Gateway == "" {
		rec.Gateway = prefix.Addr().Next().String()
	} else if gw, err := netip.ParseAddr(rec.Gateway); err != nil || !prefix.Contains(gw) {
		return rec, fmt.Errorf("network %s: gateway %s is not an address in subnet %s", spec.Name, rec.Gateway, rec.Subnet)
	}
	return rec, nil
}

// bridgeName is short (Linux allows 15 bytes) and unique per state
// directory and network name.
func (c *Client) bridgeName(name string) string {
	sum := sha256.Sum256([]byte(c.opts.StateDir + "\x00" + name))
	return "stk" + hex.EncodeToString(sum[:4])
}

// RemoveNetwork deletes the network's rules, the bridge, the leases and the
// record. A network still used by a container is an error; a missing one is
// not.
func (c *Client) RemoveNetwork(ctx context.Context, name string) error {
	if err := checkName("network", name); err != nil {
		return err
	}
	rec, err := c.loadNetwork(name)
	if errdefs.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	if users := c.networkUsers(name); len(users) > 0 {
		return fmt.Errorf("network %s is in use by container %s: remove it first: %w", name, strings.Join(users, ", "), errdefs.ErrFailedPrecondition)
	}
	// Host-wide, as in CreateNetwork: removing the last network's rules
	// removes stack's chains, which a network being created needs.
	unlock, err := lockFile(ctx, networksLock, nil)
	if err != nil {
		return fmt.Errorf("remove network %s: %w", name, err)
	}
	defer unlock()
	tables, err := c.destroyBridge(ctx, rec)
	if err != nil {
		return fmt.Errorf("remove network %s: %w", name, err)
	}
	if err := os.RemoveAll(c.stateDir(dirNetworks, dirIPAM, name)); err != nil {
		return fmt.Errorf("remove network %s leases: %w", name, err)
	}
	if err := os.Remove(c.networkPath(name)); err != nil && !isNotExist(err) {
		return fmt.Errorf("remove network %s record: %w", name, err)
	}
	c.pruneSharedChains(ctx, tables)
	return nil
}

func (c *Client) loadNetwork(name string) (networkRecord, error) {
	var rec networkRecord
	err := readJSON(c.networkPath(name), &rec)
	if isNotExist(err) {
		return rec, fmt.Errorf("network %s: %w", name, errdefs.ErrNotFound)
	}
	return rec, err
}

// listNetworks reads every network record, sorted by name.
func (c *Client) listNetworks() ([]networkRecord, error) {
	paths, err := filepath.Glob(c.stateDir(dirNetworks, "*.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var out []networkRecord
	for _, p := range paths {
		var rec networkRecord
		if err := readJSON(p, &rec); err != nil {
			if isNotExist(err) {
				continue
			}
			return nil, err
		}
		out = append(out, rec)
	}
	return out, nil
}

// networkUsers lists the containers whose run records attach to name.
func (c *Client) networkUsers(name string) []string {
	var users []string
	recs, _ := c.listRunRecords()
	for id, rr := range recs {
		for _, a := range rr.Attachments {
			if a.Network == name {
				users = append(users, id)
			}
		}
	}
	sort.Strings(users)
	return users
}

func (r networkRecord) observed() engine.Network {
	return engine.Network{
		Name: r.Name, Project: r.Project, ConfigHash: r.ConfigHash, Subnet: r.Subnet,
		Gateway: r.Gateway, Bridge: r.Bridge, Internal: r.Internal, Labels: r.Labels,
	}
}
