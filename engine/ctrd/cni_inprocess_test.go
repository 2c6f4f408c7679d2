package ctrd

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"

	"github.com/stackdev/stack/engine"
)

func TestOnlyABridgeWithHostLocalLeasesIsHandledInProcess(t *testing.T) {
	c := &Client{opts: Options{StateDir: t.TempDir()}}
	rec, err := c.planNetwork(engine.NetworkSpec{Name: "demo_default", Subnet: "10.250.7.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	earlier := rec
	earlier.SubnetRules = false
	internal := rec
	internal.Internal = true
	web := []engine.PortBinding{{HostPort: 8080, ContainerPort: 80}}
	for _, tc := range []struct {
		name string
		rec  networkRecord
		o    attachOpts
		want bool
	}{
		{"an attachment that publishes nothing", rec, attachOpts{primary: true}, true},
		{"a second attachment (no default route)", rec, attachOpts{}, true},
		{"an attachment to an internal network", internal, attachOpts{primary: true}, true},
		{"an attachment with an ipv4_address", rec, attachOpts{primary: true, ipv4: "10.250.7.9"}, true},
		{"an attachment that publishes ports (portmap chained after)", rec, attachOpts{primary: true, ports: web}, true},
		{"an attachment on an earlier version's network (ipMasq, firewall)", earlier, attachOpts{primary: true}, false},
	} {
		conf, err := tc.rec.conflist(c, tc.o)
		if err != nil {
			t.Fatal(err)
		}
		b, got := parseBridgeOnly(conf)
		if got != tc.want {
			t.Errorf("%s: in process = %v, want %v", tc.name, got, tc.want)
		}
		if got && b.leaseDir != c.stateDir(dirNetworks, dirIPAM, "demo_default") {
			t.Errorf("%s: leases kept in %s, host-local keeps them in %s", tc.name, b.leaseDir, c.stateDir(dirNetworks, dirIPAM, "demo_default"))
		}
	}
	conf, _ := rec.conflist(c, attachOpts{primary: true})
	withMTU := strings.Replace(string(conf), `"type":"bridge"`, `"type":"bridge","mtu":1400`, 1)
	if _, ok := parseBridgeOnly([]byte(withMTU)); ok {
		t.Error("a bridge key the in-process path does not know (mtu) is ignored instead of left to the plugins")
	}
}

// attachFixture is a network with the real CNI plugins, wrapped so that
// a test sees each run of them, and a bridge made as `stack` makes it.
type attachFixture struct {
	t    *testing.T
	c    *Client
	rec  networkRecord
	runs string
}

func newAttachFixture(t *testing.T, subnet string, withBridge bool) *attachFixture {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces and links")
	}
	const real = "/usr/lib/cni"
	if _, err := os.Stat(filepath.Join(real, "bridge")); err != nil {
		t.Skip("no CNI plugins in /usr/lib/cni")
	}
	f := &attachFixture{t: t, runs: filepath.Join(t.TempDir(), "runs")}
	plugins := t.TempDir()
	for _, p := range []string{"bridge", "host-local", "portmap"} {
		script := fmt.Sprintf("#!/bin/sh\necho \"%s $CNI_COMMAND\" >>%s\nexec %s \"$@\"\n", p, f.runs, filepath.Join(real, p))
		if err := os.WriteFile(filepath.Join(plugins, p), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	f.c = &Client{opts: Options{StateDir: t.TempDir(), CNIPluginDirs: []string{plugins}}}
	var err error
	if f.rec, err = f.c.planNetwork(engine.NetworkSpec{Name: "inproc_default", Subnet: subnet}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", f.rec.Bridge).Run() })
	if withBridge {
		prefix := netip.MustParsePrefix(subnet)
		f.ip("link", "add", f.rec.Bridge, "type", "bridge")
		f.ip("addr", "add", fmt.Sprintf("%s/%d", f.rec.Gateway, prefix.Bits()), "dev", f.rec.Bridge)
		f.ip("link", "set", f.rec.Bridge, "up")
	}
	return f
}

func (f *attachFixture) ip(args ...string) string {
	f.t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		f.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// netns makes a container's netns, removed at the end of the test.
func (f *attachFixture) netns(id string) string {
	f.t.Helper()
	ns := netnsPath(id)
	if err := createNetNS(ns); err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = removeNetNS(ns) })
	return ns
}

func (f *attachFixture) attachment(ipv4 string, ports ...engine.PortBinding) attachment {
	f.t.Helper()
	o := attachOpts{primary: true, ipv4: ipv4, ports: ports}
	conf, err := f.rec.conflist(f.c, o)
	if err != nil {
		f.t.Fatal(err)
	}
	return attachment{Network: f.rec.Name, IfName: "eth0", Conflist: conf, CapArgs: capArgs(o, 24), SubnetRules: true}
}

// pluginRuns says which plugins ran since the last call.
func (f *attachFixture) pluginRuns() string {
	f.t.Helper()
	ran, _ := os.ReadFile(f.runs)
	_ = os.Remove(f.runs)
	return strings.TrimSpace(string(ran))
}

func (f *attachFixture) leases() []string {
	var names []string
	entries, _ := os.ReadDir(f.c.stateDir(dirNetworks, dirIPAM, f.rec.Name))
	for _, e := range entries {
		if _, err := netip.ParseAddr(e.Name()); err == nil {
			names = append(names, e.Name())
		}
	}
	return names
}

// assertNothingLeft: no interface in the netns but loopback, no veth on
// the bridge, no lease, no cached CNI result.
func (f *attachFixture) assertNothingLeft(ns string) {
	f.t.Helper()
	if out := f.ip("-n", filepath.Base(ns), "-o", "link", "show"); strings.Contains(out, "eth0") {
		f.t.Errorf("eth0 is still in the netns: %s", out)
	}
	if left := linksOn(f.t, f.rec.Bridge); len(left) > 0 {
		f.t.Errorf("veths left on the bridge: %q", left)
	}
	if left := f.leases(); len(left) > 0 {
		f.t.Errorf("leases left: %q", left)
	}
	if cached, _ := filepath.Glob(filepath.Join(f.c.stateDir(dirNetworks, dirCNICache), "results", "*")); len(cached) > 0 {
		f.t.Errorf("cached results left: %q", cached)
	}
}

func TestAContainerIsAttachedInProcessAsTheBridgePluginAttachesIt(t *testing.T) {
	f := newAttachFixture(t, "10.250.9.0/24", true)
	ctx := context.Background()
	nsA, nsB := f.netns("inprocA"), f.netns("inprocB")
	a, b := f.attachment(""), f.attachment("10.250.9.77")
	if err := f.c.cniAdd(ctx, "inprocA", nsA, &a); err != nil {
		t.Fatal(err)
	}
	if err := f.c.cniAdd(ctx, "inprocB", nsB, &b); err != nil {
		t.Fatal(err)
	}
	if ran := f.pluginRuns(); ran != "" {
		t.Errorf("ADD ran plugins:\n%s", ran)
	}
	if a.IPv4 != "10.250.9.2" || b.IPv4 != "10.250.9.77" || a.Gateway != "10.250.9.1" {
		t.Errorf("addresses %s and %s (gateway %s), want 10.250.9.2, the requested 10.250.9.77 and 10.250.9.1", a.IPv4, b.IPv4, a.Gateway)
	}
	inA := func(args ...string) string { return f.ip(append([]string{"-n", filepath.Base(nsA)}, args...)...) }
	if got := inA("-4", "-o", "addr", "show", "eth0"); !strings.Contains(got, "inet 10.250.9.2/24 brd 10.250.9.255") {
		t.Errorf("eth0's address: %s", got)
	}
	if got := inA("-o", "link", "show", "eth0"); !strings.Contains(got, "link/ether 02:42:0a:fa:09:02") || !strings.Contains(got, "state UP") {
		t.Errorf("eth0 is not up with the MAC address of its IPv4 address: %s", got)
	}
	if got := inA("route", "show", "default"); !strings.Contains(got, "default via 10.250.9.1 dev eth0") {
		t.Errorf("default route: %q", got)
	}
	if out, err := exec.Command("ip", "netns", "exec", filepath.Base(nsA), "cat", "/proc/sys/net/ipv4/conf/eth0/arp_notify").CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "1" {
		t.Errorf("eth0's arp_notify in the netns: %q %v, want 1 as the bridge plugin sets it", out, err)
	}
	veths := linksOn(t, f.rec.Bridge)
	if len(veths) != 2 {
		t.Fatalf("veths on the bridge: %q, want 2", veths)
	}
	for _, v := range veths {
		name, _, _ := strings.Cut(v, "@")
		if hp, _ := os.ReadFile("/sys/class/net/" + name + "/brport/hairpin_mode"); strings.TrimSpace(string(hp)) != "1" {
			t.Errorf("%s: hairpin mode %q, want 1", name, hp)
		}
	}
	if got := strings.Join(f.leases(), " "); got != "10.250.9.2 10.250.9.77" {
		t.Errorf("leases %q", got)
	}
	for _, to := range []string{b.IPv4, a.Gateway} {
		if out, err := exec.Command("ip", "netns", "exec", filepath.Base(nsA), "busybox", "ping", "-c", "1", "-W", "2", to).CombinedOutput(); err != nil {
			t.Errorf("A cannot reach %s: %v: %s", to, err, out)
		}
	}

	// A requested address that is taken fails, as with the plugins, and
	// leaves nothing of the container that asked for it.
	nsC := f.netns("inprocC")
	c := f.attachment("10.250.9.77")
	if err := f.c.cniAdd(ctx, "inprocC", nsC, &c); err == nil || !strings.Contains(err.Error(), "not available") {
		t.Errorf("a taken address: %v", err)
	}
	if ran := f.pluginRuns(); ran != "" {
		t.Errorf("the plugins ran after host-local's refusal, which they would repeat:\n%s", ran)
	}
	if len(linksOn(t, f.rec.Bridge)) != 2 || len(f.leases()) != 2 {
		t.Errorf("the failed attach left something: veths %q, leases %q", linksOn(t, f.rec.Bridge), f.leases())
	}

	for _, d := range []struct {
		id, ns string
		a      attachment
	}{{"inprocA", nsA, a}, {"inprocB", nsB, b}} {
		if err := f.c.cniDel(ctx, d.id, d.ns, d.a); err != nil {
			t.Fatal(err)
		}
	}
	if ran := f.pluginRuns(); ran != "" {
		t.Errorf("DEL ran plugins:\n%s", ran)
	}
	f.assertNothingLeft(nsA)
	f.assertNothingLeft(nsB)
	// DEL again, and without the netns as after a crash: nothing to do.
	if err := f.c.cniDel(ctx, "inprocA", nsA, a); err != nil {
		t.Errorf("a second DEL: %v", err)
	}
	if err := f.c.cniDel(ctx, "inprocA", "", a); err != nil {
		t.Errorf("a DEL without the netns: %v", err)
	}
}

// Containers attached by an earlier stack through the plugins are
// detached in process, and the plugins can detach what was attached in
// process (the fallback).
func TestThePluginsAndThisProcessUndoEachOthersAttachments(t *testing.T) {
	f := newAttachFixture(t, "10.250.10.0/24", true)
	ctx := context.Background()
	nsA, nsB := f.netns("crossA"), f.netns("crossB")
	a, b := f.attachment(""), f.attachment("")
	list, err := libcni.NetworkConfFromBytes(a.Conflist)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.cni().AddNetworkList(ctx, list, f.c.runtimeConf("crossA", nsA, a)); err != nil {
		t.Fatal(err)
	}
	if err := f.c.cniDel(ctx, "crossA", nsA, a); err != nil {
		t.Fatal(err)
	}
	f.assertNothingLeft(nsA)

	if err := f.c.cniAdd(ctx, "crossB", nsB, &b); err != nil {
		t.Fatal(err)
	}
	f.pluginRuns()
	if err := f.c.cni().DelNetworkList(ctx, list, f.c.runtimeConf("crossB", nsB, b)); err != nil {
		t.Fatal(err)
	}
	if ran := f.pluginRuns(); !strings.Contains(ran, "bridge DEL") {
		t.Errorf("the plugins did not run: %q", ran)
	}
	f.assertNothingLeft(nsB)
}

// After a reboot the bridge is gone until the first ADD; the bridge plugin
// makes it, as before.
func TestAMissingBridgeIsLeftToTheBridgePlugin(t *testing.T) {
	f := newAttachFixture(t, "10.250.11.0/24", false)
	ctx := context.Background()
	ns := f.netns("nobridge")
	a := f.attachment("")
	if err := f.c.cniAdd(ctx, "nobridge", ns, &a); err != nil {
		t.Fatal(err)
	}
	if ran := f.pluginRuns(); !strings.Contains(ran, "bridge ADD") {
		t.Errorf("the bridge plugin did not run: %q", ran)
	}
	if a.IPv4 != "10.250.11.2" || len(f.leases()) != 1 || len(linksOn(t, f.rec.Bridge)) != 1 {
		t.Errorf("after ADD: address %q, leases %q, veths %q; want one of each", a.IPv4, f.leases(), linksOn(t, f.rec.Bridge))
	}
	if err := f.c.cniDel(ctx, "nobridge", ns, a); err != nil {
		t.Fatal(err)
	}
	f.assertNothingLeft(ns)
}

// A container that publishes ports is attached in process, and the
// portmap plugin alone runs after, given the container's address as the
// bridge plugin's result would give it; DEL runs portmap's DEL alone.
func TestPortmapRunsAloneAfterAnAttachmentInProcess(t *testing.T) {
	f := newAttachFixture(t, "10.250.12.0/24", true)
	ctx := context.Background()
	// portmap's shared chains stay after its DEL; a network's removal
	// prunes them once no container publishes a port.
	t.Cleanup(func() { f.c.pruneSharedChains(ctx, ruleset{}) })
	ns := f.netns("portmapped")
	a := f.attachment("", engine.PortBinding{HostIP: "127.0.0.1", HostPort: 47913, ContainerPort: 80, Protocol: "tcp"})
	if err := f.c.cniAdd(ctx, "portmapped", ns, &a); err != nil {
		t.Fatal(err)
	}
	if ran := f.pluginRuns(); ran != "portmap ADD" {
		t.Errorf("ADD ran %q, want portmap's ADD alone", ran)
	}
	dnat := "--to-destination " + a.IPv4 + ":80"
	if rules, _ := exec.Command("iptables-save", "-t", "nat").CombinedOutput(); !strings.Contains(string(rules), dnat) {
		t.Errorf("no DNAT rule %q to the container after ADD", dnat)
	}
	if err := f.c.cniDel(ctx, "portmapped", ns, a); err != nil {
		t.Fatal(err)
	}
	if ran := f.pluginRuns(); ran != "portmap DEL" {
		t.Errorf("DEL ran %q, want portmap's DEL alone", ran)
	}
	if rules, _ := exec.Command("iptables-save", "-t", "nat").CombinedOutput(); strings.Contains(string(rules), a.IPv4+":80") {
		t.Errorf("a DNAT rule to %s:80 is left after DEL", a.IPv4)
	}
	f.assertNothingLeft(ns)
}

// linksOn lists the interfaces whose master is bridge.
func linksOn(t *testing.T, bridge string) []string {
	t.Helper()
	out, err := exec.Command("ip", "-o", "link", "show", "master", bridge).CombinedOutput()
	if err != nil {
		if strings.Contains(string(out), "does not exist") {
			return nil
		}
		t.Fatalf("ip link show master %s: %v: %s", bridge, err, out)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) > 1 {
			names = append(names, strings.TrimSuffix(f[1], ":"))
		}
	}
	return names
}
