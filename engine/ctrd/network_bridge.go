package ctrd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
)

// stack's chains in the filter table, jumped to first in FORWARD and in this
// order. Isolation: traffic that enters from one stack bridge and leaves
// through another is dropped unless it was DNATed to a published port, as
// Docker's DOCKER-ISOLATION-STAGE-1/2 do. Forward: what the containers of a
// network send, and the replies to it, are accepted, as the CNI firewall
// plugin's CNI-FORWARD does for each container (a host whose FORWARD policy
// is DROP, as Docker leaves it, would drop them otherwise).
const (
	chainIsolation1 = "STACK-ISOLATION-1"
	chainIsolation2 = "STACK-ISOLATION-2"
	chainForward    = "STACK-FORWARD"
)

var stackChains = []string{chainIsolation1, chainIsolation2, chainForward}

// forwardJumps are the rules FORWARD must begin with, in order.
var forwardJumps = []string{"-A FORWARD -j " + chainIsolation1, "-A FORWARD -j " + chainForward}

// isolationMu serialises edits of the FORWARD jumps within this process;
// iptables -w serialises each command across processes.
var isolationMu sync.Mutex

// isolationSettled is set once stack's jumps were seen ahead of the CNI
// firewall plugin's; guarded by isolationMu.
var isolationSettled bool

// setupBridge creates the bridge with the gateway address, up, before any
// container attaches, so that the daemon can bind DNS on the gateway and the
// CNI bridge plugin adopts it. It is idempotent.
func (c *Client) setupBridge(ctx context.Context, rec networkRecord) error {
	prefix, err := netip.ParsePrefix(rec.Subnet)
	if err != nil {
		return err
	}
	if _, err := net.InterfaceByName(rec.Bridge); err != nil {
		if err := run(ctx, "ip", "link", "add", rec.Bridge, "type", "bridge"); err != nil {
			return err
		}
	}
	addr := fmt.Sprintf("%s/%d", rec.Gateway, prefix.Bits())
	if err := run(ctx, "ip", "addr", "replace", addr, "dev", rec.Bridge); err != nil {
		return err
	}
	if err := run(ctx, "ip", "link", "set", rec.Bridge, "up"); err != nil {
		return err
	}
	return c.addBridgeRules(ctx, rec)
}

// bridgeRulesChecked holds the networks (by state directory and name) whose
// bridgeRules this process has added or checked. A reboot flushes iptables
// while the bridge comes back with the first CNI ADD, so the first container
// of a network that a process attaches checks them, once, and not every
// container: the rules are per network.
var bridgeRulesChecked = struct {
	sync.Mutex
	done map[string]bool
}{done: map[string]bool{}}

func (c *Client) bridgeRulesKey(network string) string { return c.opts.StateDir + "\x00" + network }

// ensureBridgeRules adds the network's bridgeRules that are missing, the
// first time this process attaches a container to it. The host-wide
// network lock keeps two processes (or two starts in this one) from both
// finding a rule missing and both adding it. The in-process mutex is never
// held while waiting for that lock: CreateNetwork holds the lock and then
// records its rules here.
func (c *Client) ensureBridgeRules(ctx context.Context, network string) error {
	bridgeRulesChecked.Lock()
	done := bridgeRulesChecked.done[c.bridgeRulesKey(network)]
	bridgeRulesChecked.Unlock()
	if done {
		return nil
	}
	rec, err := c.loadNetwork(network)
	if err != nil {
		return fmt.Errorf("network %s: %w", network, err)
	}
	unlock, err := lockFile(ctx, networksLock, nil)
	if err != nil {
		return fmt.Errorf("network %s: %w", network, err)
	}
	defer unlock()
	if err := c.addBridgeRules(ctx, rec); err != nil {
		return fmt.Errorf("network %s: %w", network, err)
	}
	return nil
}

// destroyBridge removes the network's bridgeRules and the bridge, and
// stack's chains once no network has rules there. Missing pieces are not
// errors. It returns the tables as they were read before the change.
func (c *Client) destroyBridge(ctx context.Context, rec networkRecord) (ruleset, error) {
	bridgeRulesChecked.Lock()
	delete(bridgeRulesChecked.done, c.bridgeRulesKey(rec.Name))
	bridgeRulesChecked.Unlock()
	// The rules name the bridge only as a string, and neither change waits
	// for the other: the kernel's commit of the tables and its removal of
	// the bridge (each a few RCU grace periods, tens of milliseconds here)
	// run side by side.
	linkDeleted := make(chan error, 1)
	go func() {
		if _, err := net.InterfaceByName(rec.Bridge); err != nil {
			linkDeleted <- nil
			return
		}
		linkDeleted <- run(ctx, "ip", "link", "del", rec.Bridge)
	}()
	isolationMu.Lock()
	isolationSettled = false
	before, err := changeRules(ctx, func(rs ruleset) restoreScript { return removeBridgeRules(rs, rec) })
	isolationMu.Unlock()
	return before, errors.Join(err, <-linkDeleted)
}

// addBridgeRules creates stack's chains when missing, puts their FORWARD
// jumps first and replaces the network's rules with its bridgeRules, then
// records that this process has them in place (bridgeRulesChecked).
func (c *Client) addBridgeRules(ctx context.Context, rec networkRecord) error {
	isolationMu.Lock()
	_, err := changeRules(ctx, func(rs ruleset) restoreScript { return replaceBridgeRules(rs, rec) })
	isolationMu.Unlock()
	if err != nil {
		return err
	}
	bridgeRulesChecked.Lock()
	bridgeRulesChecked.done[c.bridgeRulesKey(rec.Name)] = true
	bridgeRulesChecked.Unlock()
	return nil
}

// isolationFirst puts the jumps to stack's chains first in FORWARD, in
// order. The CNI firewall plugin, which networks made by earlier versions
// still use, inserts its own CNI-FORWARD jump, which accepts all of a
// container's traffic, at the top when the first container attaches, so
// this runs again after each attach to such a network.
func isolationFirst(ctx context.Context) error {
	isolationMu.Lock()
	defer isolationMu.Unlock()
	if isolationSettled {
		return nil
	}
	settled := false
	_, err := changeRules(ctx, func(rs ruleset) restoreScript {
		filter := rs.rules["filter"]
		// Once the firewall plugin's jump exists below ours, nothing this
		// process does will move ours again: skip the check from now on.
		settled = jumpsFirst(filter) && slices.ContainsFunc(filter, func(l string) bool { return strings.HasSuffix(l, "-j CNI-FORWARD") })
		var s restoreScript
		s.putJumpsFirst(filter)
		return s
	})
	isolationSettled = err == nil && settled
	return err
}

// bridgeRules are the rules a network adds with its bridge and removes with
// it, without the -A/-D verb: isolation, and with SubnetRules the
// acceptance of its forwarded traffic and the masquerade of its subnet.
func bridgeRules(rec networkRecord) [][]string {
	rules := isolationRules(rec)
	if !rec.SubnetRules {
		return rules
	}
	rules = append(rules, forwardAccepts(rec)...)
	if !rec.Internal {
		rules = append(rules, masqueradeRule(rec))
	}
	return rules
}

// forwardAccepts accept what the network's containers send and the replies
// to it, the CNI firewall plugin's two rules per container as two for the
// subnet. The firewall plugin ran nine iptables processes on each ADD and
// each DEL, a seventh of a cold `up` of 30 services.
func forwardAccepts(rec networkRecord) [][]string {
	comment := []string{"-m", "comment", "--comment", "stack network " + rec.Name}
	return [][]string{
		append([]string{chainForward, "-s", rec.Subnet, "-i", rec.Bridge, "-j", "ACCEPT"}, comment...),
		append([]string{chainForward, "-d", rec.Subnet, "-o", rec.Bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"}, comment...),
	}
}

// masqueradeRule masquerades what the network's containers send out of the
// host: one nat rule for the subnet, as Docker has one per bridge. The CNI
// bridge plugin's ipMasq made a chain with two rules and a POSTROUTING jump
// per container instead, nine iptables runs on each ADD and more on each
// DEL, which were a tenth of a cold `up` of 30 services and a third of their
// `down`. Like the plugin's, it leaves multicast alone, and the host's own
// packets: the gateway address is in the subnet, and a query from the host
// to its DNS server there leaves through lo, not the bridge, so without
// the source-type match it would be masqueraded to 127.0.0.1 and refused.
func masqueradeRule(rec networkRecord) []string {
	return []string{"POSTROUTING", "-t", "nat", "-s", rec.Subnet, "!", "-o", rec.Bridge, "!", "-d", "224.0.0.0/4",
		"-m", "addrtype", "!", "--src-type", "LOCAL", "-j", "MASQUERADE", "-m", "comment", "--comment", "stack network " + rec.Name}
}

// isolationRules are the per-bridge rules in the filter table, without the
// -A/-D verb.
func isolationRules(rec networkRecord) [][]string {
	br := rec.Bridge
	comment := []string{"-m", "comment", "--comment", "stack network " + rec.Name}
	rules := [][]string{
		append([]string{chainIsolation1, "-i", br, "!", "-o", br, "-j", chainIsolation2}, comment...),
		append([]string{chainIsolation2, "-o", br, "-m", "conntrack", "!", "--ctstate", "DNAT", "-j", "DROP"}, comment...),
	}
	if rec.Internal {
		rules = append(rules,
			append([]string{chainIsolation1, "-i", br, "!", "-o", br, "-j", "DROP"}, comment...),
			append([]string{chainIsolation1, "-o", br, "!", "-i", br, "-j", "DROP"}, comment...),
		)
	}
	return rules
}

// sharedPortChains are portmap's nat chains shared by every container that
// publishes ports.
var sharedPortChains = []string{"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"}

// pruneSharedChains removes portmap's shared nat chains and their jumps once
// no CNI-DN-* chain (one per container with published ports, from any CNI
// user on the host) remains; portmap recreates them when needed. seen is a
// recent read of the tables: when it leaves nothing to prune (no shared
// chain, or a container still publishing a port), nothing is read again.
// Failures are left for the next removal to retry.
func (c *Client) pruneSharedChains(ctx context.Context, seen ruleset) {
	if seen.chains != nil {
		var s restoreScript
		if s.prunePortChains(seen); len(s.tables) == 0 {
			return
		}
	}
	_, _ = changeRules(ctx, func(rs ruleset) restoreScript {
		var s restoreScript
		s.prunePortChains(rs)
		return s
	})
}

// removeMasqRules deletes nat POSTROUTING rules the bridge plugin added for
// container id on network (their comment names both) and the chains they
// jump to.
func removeMasqRules(ctx context.Context, network, id string) error {
	out, err := exec.CommandContext(ctx, "iptables", "-w", "-t", "nat", "-S", "POSTROUTING").Output()
	if err != nil {
		return fmt.Errorf("iptables -t nat -S POSTROUTING: %w", err)
	}
	marker := fmt.Sprintf(`name: \"%s\" id: \"%s\"`, network, id)
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "-A POSTROUTING ") || !strings.Contains(line, marker) {
			continue
		}
		if err := run(ctx, "sh", "-c", "iptables -w -t nat -D "+strings.TrimPrefix(line, "-A ")); err != nil {
			return err
		}
		f := strings.Fields(line)
		for i := range f[:len(f)-1] {
			if f[i] == "-j" && strings.HasPrefix(f[i+1], "CNI-") {
				_ = iptables(ctx, "-t", "nat", "-F", f[i+1])
				_ = iptables(ctx, "-t", "nat", "-X", f[i+1])
			}
		}
	}
	return nil
}

func iptables(ctx context.Context, args ...string) error {
	return run(ctx, "iptables", append([]string{"-w"}, args...)...)
}

// run executes a host networking command and returns its output in the
// error when it fails.
func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
