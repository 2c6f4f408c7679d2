package ctrd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
)

// Isolation chains in the filter table: traffic that enters from one stack
// bridge and leaves through another is dropped unless it was DNATed to a
// published port, as Docker's DOCKER-ISOLATION-STAGE-1/2 do.
const (
	chainIsolation1 = "STACK-ISOLATION-1"
	chainIsolation2 = "STACK-ISOLATION-2"
)

// isolationMu serialises edits of the FORWARD jump within this process;
// iptables -w serialises each command across processes.
var isolationMu sync.Mutex

// isolationSettled is set once the isolation jump was seen ahead of the CNI
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
	return c.addIsolation(ctx, rec)
}

// destroyBridge removes the isolation rules and the bridge. Missing pieces
// are not errors.
func (c *Client) destroyBridge(ctx context.Context, rec networkRecord) error {
	for _, rule := range isolationRules(rec) {
		if err := deleteRule(ctx, rule...); err != nil {
			return err
		}
	}
	if _, err := net.InterfaceByName(rec.Bridge); err != nil {
		return nil
	}
	return run(ctx, "ip", "link", "del", rec.Bridge)
}

func (c *Client) addIsolation(ctx context.Context, rec networkRecord) error {
	for _, chain := range []string{chainIsolation1, chainIsolation2} {
		if iptables(ctx, "-n", "-L", chain) != nil {
			if err := iptables(ctx, "-N", chain); err != nil && iptables(ctx, "-n", "-L", chain) != nil {
				return err
			}
		}
	}
	if err := isolationFirst(ctx); err != nil {
		return err
	}
	for _, rule := range isolationRules(rec) {
		if iptables(ctx, append([]string{"-C"}, rule...)...) == nil {
			continue
		}
		if err := iptables(ctx, append([]string{"-A"}, rule...)...); err != nil {
			return err
		}
	}
	return nil
}

// isolationFirst puts the jump to the isolation chain first in FORWARD. The
// CNI firewall plugin inserts its own CNI-FORWARD jump, which accepts all of
// a container's traffic, at the top when the first container attaches, so
// this runs again after each attach.
func isolationFirst(ctx context.Context) error {
	isolationMu.Lock()
	defer isolationMu.Unlock()
	if isolationSettled {
		return nil
	}
	out, err := exec.CommandContext(ctx, "iptables", "-w", "-S", "FORWARD").Output()
	if err != nil {
		return fmt.Errorf("iptables -S FORWARD: %w", err)
	}
	first, cniForward := forwardRules(string(out))
	if first == "-A FORWARD -j "+chainIsolation1 {
		// Once the firewall plugin's jump exists below ours, nothing this
		// process does will move ours again: skip the check from now on.
		isolationSettled = cniForward
		return nil
	}
	if err := deleteRule(ctx, "FORWARD", "-j", chainIsolation1); err != nil {
		return err
	}
	return iptables(ctx, "-I", "FORWARD", "1", "-j", chainIsolation1)
}

// forwardRules returns FORWARD's first rule and whether the CNI firewall
// plugin's jump is there.
func forwardRules(out string) (first string, cniForward bool) {
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "-A ") {
			continue
		}
		if first == "" {
			first = line
		}
		cniForward = cniForward || strings.HasSuffix(line, "-j CNI-FORWARD")
	}
	return first, cniForward
}

// isolationRules are the per-bridge rules, without the -A/-D verb.
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

// pruneIsolation removes the isolation chains and the FORWARD jump once no
// network (of any state directory) has rules in them.
func pruneIsolation(ctx context.Context) {
	isolationMu.Lock()
	defer isolationMu.Unlock()
	isolationSettled = false
	out, err := exec.CommandContext(ctx, "iptables", "-w", "-S").Output()
	if err != nil {
		return
	}
	listing := string(out)
	for _, chain := range []string{chainIsolation1, chainIsolation2} {
		if !strings.Contains(listing, "-N "+chain+"\n") || strings.Contains(listing, "-A "+chain+" ") {
			return // gone already, or some network still has rules there
		}
	}
	if deleteRule(ctx, "FORWARD", "-j", chainIsolation1) != nil {
		return
	}
	_ = iptables(ctx, "-X", chainIsolation1)
	_ = iptables(ctx, "-X", chainIsolation2)
}

// deleteRule deletes every copy of rule (a chain and its matches, in the
// filter table unless rule says -t): -D until iptables says there is none,
// which costs one process per copy plus one, where checking with -C first
// cost two per copy plus one. iptables exits 1 for a rule or chain that is
// not there, and with another status for anything else.
func deleteRule(ctx context.Context, rule ...string) error {
	for {
		err := iptables(ctx, append([]string{"-D"}, rule...)...)
		var exit *exec.ExitError
		switch {
		case err == nil:
			continue
		case errors.As(err, &exit) && exit.ExitCode() == 1:
			return nil
		default:
			return err
		}
	}
}

// pruneSharedChains removes portmap's shared nat chains and their jumps once
// no CNI-DN-* chain (one per container with published ports, from any CNI
// user on the host) remains. portmap recreates them when needed.
func (c *Client) pruneSharedChains(ctx context.Context) {
	pruneIsolation(ctx)
	out, err := exec.CommandContext(ctx, "iptables", "-w", "-t", "nat", "-S").Output()
	if err != nil || bytes.Contains(out, []byte("-N CNI-DN-")) {
		return
	}
	jumps := map[string]string{
		"CNI-HOSTPORT-DNAT":    "PREROUTING OUTPUT",
		"CNI-HOSTPORT-MASQ":    "POSTROUTING",
		"CNI-HOSTPORT-SETMARK": "",
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[0] == "-A" && f[len(f)-2] == "-j" {
			if _, ok := jumps[f[len(f)-1]]; ok && (f[1] == "PREROUTING" || f[1] == "OUTPUT" || f[1] == "POSTROUTING") {
				// iptables -S quotes comments the way sh does.
				_ = run(ctx, "sh", "-c", "iptables -w -t nat -D "+strings.TrimPrefix(line, "-A "))
			}
		}
	}
	for _, chain := range []string{"CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"} {
		if !bytes.Contains(out, []byte("-N "+chain+"\n")) {
			continue // portmap never made it: no container published a port
		}
		_ = iptables(ctx, "-t", "nat", "-F", chain)
		_ = iptables(ctx, "-t", "nat", "-X", chain)
	}
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
