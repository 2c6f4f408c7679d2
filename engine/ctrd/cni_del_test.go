package ctrd

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stackdev/stack/engine"
)

func TestOnlyABridgeWithHostLocalLeasesIsDetachedInProcess(t *testing.T) {
	c := &Client{opts: Options{StateDir: t.TempDir()}}
	rec, err := c.planNetwork(engine.NetworkSpec{Name: "demo_default", Subnet: "10.250.7.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	earlier := rec
	earlier.SubnetRules = false
	web := []engine.PortBinding{{HostPort: 8080, ContainerPort: 80}}
	for _, tc := range []struct {
		name string
		rec  networkRecord
		o    attachOpts
		want bool
	}{
		{"an attachment that publishes nothing", rec, attachOpts{primary: true}, true},
		{"an attachment that publishes ports (portmap)", rec, attachOpts{primary: true, ports: web}, false},
		{"an attachment on an earlier version's network (ipMasq, firewall)", earlier, attachOpts{primary: true}, false},
	} {
		conf, err := tc.rec.conflist(c, tc.o)
		if err != nil {
			t.Fatal(err)
		}
		d, got := bridgeOnlyDel(conf)
		if got != tc.want {
			t.Errorf("%s: detached in process = %v, want %v", tc.name, got, tc.want)
		}
		if got && d.leaseDir != c.stateDir(dirNetworks, dirIPAM, "demo_default") {
			t.Errorf("%s: leases looked for in %s, host-local keeps them in %s", tc.name, d.leaseDir, c.stateDir(dirNetworks, dirIPAM, "demo_default"))
		}
	}
}

// The real plugins attach a container; DEL, done in process, must leave
// what the plugins' DEL leaves: no interface in the netns, no veth on the
// host, no lease, no cached result. The plugins are wrapped so the test
// sees each run of them.
func TestDetachingInProcessLeavesNothingAndRunsNoPlugin(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces and links")
	}
	real := "/usr/lib/cni"
	if _, err := os.Stat(filepath.Join(real, "bridge")); err != nil {
		t.Skip("no CNI plugins in /usr/lib/cni")
	}
	plugins, runs := t.TempDir(), filepath.Join(t.TempDir(), "runs")
	for _, p := range []string{"bridge", "host-local"} {
		script := fmt.Sprintf("#!/bin/sh\necho \"%s $CNI_COMMAND\" >>%s\nexec %s \"$@\"\n", p, runs, filepath.Join(real, p))
		if err := os.WriteFile(filepath.Join(plugins, p), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c := &Client{opts: Options{StateDir: t.TempDir(), CNIPluginDirs: []string{plugins}}}
	rec, err := c.planNetwork(engine.NetworkSpec{Name: "cnidel_default", Subnet: "10.250.9.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", rec.Bridge).Run() })
	id := fmt.Sprintf("cnideltest%d", os.Getpid())
	ns := netnsPath(id)
	if err := createNetNS(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = removeNetNS(ns) })
	conf, err := rec.conflist(c, attachOpts{primary: true})
	if err != nil {
		t.Fatal(err)
	}
	a := attachment{Network: rec.Name, IfName: "eth0", Conflist: conf, CapArgs: capArgs(attachOpts{primary: true}, 24), SubnetRules: true}
	ctx := context.Background()
	if err := c.cniAdd(ctx, id, ns, &a); err != nil {
		t.Fatal(err)
	}
	hostEnds := linksOn(t, rec.Bridge)
	if len(hostEnds) != 1 || a.IPv4 == "" {
		t.Fatalf("after ADD: veths on the bridge %q, address %q; want one veth and an address", hostEnds, a.IPv4)
	}
	leases := c.stateDir(dirNetworks, dirIPAM, rec.Name)
	if _, err := os.Stat(filepath.Join(leases, a.IPv4)); err != nil {
		t.Fatalf("after ADD: no lease for %s: %v", a.IPv4, err)
	}
	if err := os.Truncate(runs, 0); err != nil {
		t.Fatal(err)
	}

	if err := c.cniDel(ctx, id, ns, a); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command("ip", "-n", filepath.Base(ns), "-o", "link", "show", "eth0").CombinedOutput(); !strings.Contains(string(out), "does not exist") {
		t.Errorf("eth0 is still in the netns: %s", out)
	}
	if left := linksOn(t, rec.Bridge); len(left) > 0 {
		t.Errorf("veths left on the bridge: %q", left)
	}
	if _, err := os.Stat(filepath.Join(leases, a.IPv4)); !os.IsNotExist(err) {
		t.Errorf("the lease for %s is still there (%v)", a.IPv4, err)
	}
	cached, _ := filepath.Glob(filepath.Join(c.stateDir(dirNetworks, dirCNICache), "results", "*"))
	if len(cached) > 0 {
		t.Errorf("cached results left: %q", cached)
	}
	if ran, _ := os.ReadFile(runs); len(ran) > 0 {
		t.Errorf("DEL ran plugins:\n%s", ran)
	}
	// DEL again, and once more without the netns, as after a crash: both
	// succeed with nothing to do.
	if err := c.cniDel(ctx, id, ns, a); err != nil {
		t.Errorf("a second DEL: %v", err)
	}
	if err := c.cniDel(ctx, id, "", a); err != nil {
		t.Errorf("a DEL without the netns: %v", err)
	}
}

// A lease written by another container, or in host-local's older format
// for this one, is told apart as host-local tells it.
func TestLeasesAreReleasedAsHostLocalReleasesThem(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("10.0.0.2", "web\r\neth0")
	write("10.0.0.3", "web\r\neth1")
	write("10.0.0.4", "db\r\neth0")
	write("last_reserved_ip.0", "10.0.0.4")
	if err := releaseLeases(dir, "web", "eth0"); err != nil {
		t.Fatal(err)
	}
	if got := namesIn(t, dir); strings.Join(got, " ") != "10.0.0.3 10.0.0.4 last_reserved_ip.0 lock" {
		t.Errorf("after releasing web's eth0: %q", got)
	}
	write("10.0.0.5", "old")
	if err := releaseLeases(dir, "old", "eth0"); err != nil {
		t.Fatal(err)
	}
	if got := namesIn(t, dir); strings.Join(got, " ") != "10.0.0.3 10.0.0.4 last_reserved_ip.0 lock" {
		t.Errorf("a lease in the older format (the ID alone) is kept: %q", got)
	}
	if err := releaseLeases(filepath.Join(dir, "never-used"), "web", "eth0"); err != nil {
		t.Errorf("a network that never gave a lease: %v", err)
	}
}

func namesIn(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
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
