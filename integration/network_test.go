package integration

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/stackdev/stack/engine"
)

// assertNetworkGone checks that a removed network left no bridge, leases,
// record or iptables rule.
func assertNetworkGone(t *testing.T, e *driverEnv, n engine.Network) {
	t.Helper()
	if _, err := os.Stat("/sys/class/net/" + n.Bridge); err == nil {
		t.Errorf("bridge %s still exists", n.Bridge)
	}
	if _, err := os.Stat(filepath.Join(e.stateDir, "networks", "ipam", n.Name)); err == nil {
		t.Errorf("lease directory of %s still exists", n.Name)
	}
	if _, err := os.Stat(filepath.Join(e.stateDir, "networks", n.Name+".json")); err == nil {
		t.Errorf("record of %s still exists", n.Name)
	}
	if rules := iptablesSave(t); strings.Contains(rules, n.Bridge) || strings.Contains(rules, n.Subnet) {
		t.Errorf("iptables still names %s or %s:\n%s", n.Bridge, n.Subnet, grepLines(rules, n.Bridge)+grepLines(rules, n.Subnet))
	}
}

func ping(e *driverEnv, from, ip string) (string, int) {
	return e.exec(from, "ping", "-c", "1", "-W", "2", ip)
}

func TestNetworkContainersOnOneNetworkReachEachOther(t *testing.T) {
	e := newDriverEnv(t)
	n := e.network("default")
	a := e.run(e.spec("a", n.Name))
	b := e.run(e.spec("b", n.Name))
	ipA := containerIP(t, e.mustExec(a.ID, "ip", "-4", "-o", "addr", "show", "eth0"))
	ipB := containerIP(t, e.mustExec(b.ID, "ip", "-4", "-o", "addr", "show", "eth0"))
	if out, code := ping(e, a.ID, ipB); code != 0 {
		t.Fatalf("a cannot ping b (%s): %s", ipB, out)
	}
	if out, code := ping(e, b.ID, ipA); code != 0 {
		t.Fatalf("b cannot ping a (%s): %s", ipA, out)
	}
	if route := e.mustExec(a.ID, "ip", "route"); !strings.Contains(route, "default via "+n.Gateway) {
		t.Errorf("no default route via the gateway %s:\n%s", n.Gateway, route)
	}
}

func TestNetworkContainersOnDifferentNetworksCannotReachEachOther(t *testing.T) {
	e := newDriverEnv(t)
	n1 := e.network("one")
	n2 := e.network("two")
	if n1.Subnet == n2.Subnet || n1.Bridge == n2.Bridge {
		t.Fatalf("two networks share subnet or bridge: %+v %+v", n1, n2)
	}
	a := e.run(e.spec("a", n1.Name))
	b := e.run(e.spec("b", n2.Name))
	ipB := containerIP(t, e.mustExec(b.ID, "ip", "-4", "-o", "addr", "show", "eth0"))
	if out, code := ping(e, a.ID, ipB); code == 0 {
		t.Fatalf("a on %s reached b on %s (%s):\n%s", n1.Name, n2.Name, ipB, out)
	}
	// Both can still reach their own gateway.
	if out, code := ping(e, a.ID, n1.Gateway); code != 0 {
		t.Fatalf("a cannot reach its gateway: %s", out)
	}
}

func TestNetworkContainerOnTwoNetworksHasTwoInterfaces(t *testing.T) {
	e := newDriverEnv(t)
	n1 := e.network("front")
	n2 := e.network("back")
	both := e.run(e.spec("both", n1.Name, n2.Name))
	back := e.run(e.spec("back", n2.Name))
	eth0 := containerIP(t, e.mustExec(both.ID, "ip", "-4", "-o", "addr", "show", "eth0"))
	eth1 := containerIP(t, e.mustExec(both.ID, "ip", "-4", "-o", "addr", "show", "eth1"))
	if !netip.MustParsePrefix(n1.Subnet).Contains(netip.MustParseAddr(eth0)) || !netip.MustParsePrefix(n2.Subnet).Contains(netip.MustParseAddr(eth1)) {
		t.Fatalf("eth0 %s eth1 %s not in %s and %s", eth0, eth1, n1.Subnet, n2.Subnet)
	}
	if route := e.mustExec(both.ID, "ip", "route"); strings.Count(route, "default") != 1 || !strings.Contains(route, "default via "+n1.Gateway) {
		t.Errorf("want one default route via the first network's gateway:\n%s", route)
	}
	ipBack := containerIP(t, e.mustExec(back.ID, "ip", "-4", "-o", "addr", "show", "eth0"))
	if out, code := ping(e, both.ID, ipBack); code != 0 {
		t.Fatalf("container on both networks cannot reach back: %s", out)
	}
	if c := e.container(both.ID); len(c.Networks) != 2 || c.Networks[0] != n1.Name || c.Networks[1] != n2.Name {
		t.Fatalf("observed networks %v", c.Networks)
	}
}

func TestNetworkStaticAddressAndExtraHosts(t *testing.T) {
	e := newDriverEnv(t)
	n := e.network("default", func(s *engine.NetworkSpec) { s.Subnet = "10.89.250.0/24" })
	if n.Subnet != "10.89.250.0/24" || n.Gateway != "10.89.250.1" {
		t.Fatalf("network %+v", n)
	}
	spec := e.spec("app", n.Name)
	spec.Network.Networks[0].IPv4Address = "10.89.250.77"
	spec.Network.ExtraHosts = []string{"host.docker.internal:host-gateway", "db.example:192.0.2.10"}
	c := e.run(spec)
	if ip := containerIP(t, e.mustExec(c.ID, "ip", "-4", "-o", "addr", "show", "eth0")); ip != "10.89.250.77" {
		t.Fatalf("eth0 = %s, want the static 10.89.250.77", ip)
	}
	hosts := e.mustExec(c.ID, "cat", "/etc/hosts")
	for _, want := range []string{"10.89.250.1\thost.docker.internal", "192.0.2.10\tdb.example", "10.89.250.77\t"} {
		if !strings.Contains(hosts, want) {
			t.Errorf("/etc/hosts lacks %q:\n%s", want, hosts)
		}
	}
}

func TestNetworkSubnetOverlapIsAnErrorNamingBoth(t *testing.T) {
	e := newDriverEnv(t)
	e.network("first", func(s *engine.NetworkSpec) { s.Subnet = "10.89.240.0/24" })
	err := e.d.CreateNetwork(e.ctx, engine.NetworkSpec{Name: e.project + "_second", Project: e.project, Subnet: "10.89.240.128/25"})
	if err == nil || !strings.Contains(err.Error(), e.project+"_second") || !strings.Contains(err.Error(), e.project+"_first") {
		t.Fatalf("overlapping subnet: %v, want an error naming both networks", err)
	}
	if _, statErr := os.Stat(filepath.Join(e.stateDir, "networks", e.project+"_second.json")); statErr == nil {
		t.Fatal("the rejected network was recorded")
	}
	if err := e.d.CreateNetwork(e.ctx, engine.NetworkSpec{Name: e.project + "_first", Project: e.project}); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("creating an existing network: %v, want already exists", err)
	}
	// Another project sees the network (as an external one).
	st, err := e.d.Observe(e.ctx, "someotherproject")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Networks) != 1 || st.Networks[0].Name != e.project+"_first" || st.Networks[0].Project != e.project {
		t.Fatalf("another project observed networks %+v", st.Networks)
	}
	if err := e.d.CreateNetwork(e.ctx, engine.NetworkSpec{Name: e.project + "_first", External: true}); !errdefs.IsAlreadyExists(err) {
		t.Fatalf("declaring an existing external network: %v", err)
	}
	if err := e.d.CreateNetwork(e.ctx, engine.NetworkSpec{Name: "nowhere_ext", External: true}); !errdefs.IsNotFound(err) {
		t.Fatalf("missing external network: %v, want not found", err)
	}
}

func TestNetworkInternalHasNoRouteOut(t *testing.T) {
	e := newDriverEnv(t)
	n := e.network("internal", func(s *engine.NetworkSpec) { s.Internal = true })
	c := e.run(e.spec("app", n.Name))
	if route := e.mustExec(c.ID, "ip", "route"); strings.Contains(route, "default") {
		t.Fatalf("internal network has a default route:\n%s", route)
	}
	if rules := iptablesSave(t); strings.Contains(grepLines(rules, "POSTROUTING"), n.Subnet) {
		t.Errorf("internal network is masqueraded:\n%s", grepLines(rules, n.Subnet))
	}
}

func TestNetworkPublishedPortReachableFromHostLoopback(t *testing.T) {
	e := newDriverEnv(t)
	n := e.network("default")
	port := freeHostPort(t)
	spec := e.spec("web", n.Name)
	spec.Process.Command = []string{"httpd", "-f", "-p", "80", "-h", "/var/www"}
	spec.Network.Ports = []engine.PortBinding{{HostPort: port, ContainerPort: 80, Protocol: "tcp"}}
	web := e.run(spec)
	if len(web.Ports) != 1 || web.Ports[0].HostPort != port {
		t.Fatalf("observed ports %+v", web.Ports)
	}
	for _, host := range []string{"127.0.0.1", n.Gateway} {
		body := httpGet(t, fmt.Sprintf("http://%s:%d/", host, port))
		if !strings.Contains(body, "busybox httpd works") {
			t.Errorf("GET via %s returned %q", host, body)
		}
	}
	// Another container reaches it through the host (the gateway) too.
	other := e.run(e.spec("client", n.Name))
	out, code := e.exec(other.ID, "sh", "-c", fmt.Sprintf("timeout 5 wget -qO- http://%s:%d/", n.Gateway, port))
	if code != 0 || !strings.Contains(out, "busybox httpd works") {
		t.Errorf("container → gateway:%d: exit %d %q", port, code, out)
	}
	// A second container publishing the same port is refused before it
	// changes anything, with the port in the error.
	dup := e.spec("dup", n.Name)
	dup.Network.Ports = spec.Network.Ports
	id, err := e.d.CreateContainer(e.ctx, dup)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.d.StartContainer(e.ctx, id); err == nil || !strings.Contains(err.Error(), fmt.Sprint(port)) {
		t.Fatalf("second publisher of %d: %v", port, err)
	}
	ip := containerIP(t, e.mustExec(web.ID, "ip", "-4", "-o", "addr", "show", "eth0"))
	for _, id := range []string{web.ID, other.ID, id} {
		if err := e.d.RemoveContainer(e.ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	e.assertGone(web.ID, ip, n)
	if rules := iptablesSave(t); strings.Contains(rules, fmt.Sprintf("--dport %d ", port)) {
		t.Errorf("a DNAT rule for %d remains:\n%s", port, grepLines(rules, fmt.Sprint(port)))
	}
}

func TestNetworkHostPortZeroGetsAFreePort(t *testing.T) {
	e := newDriverEnv(t)
	n := e.network("default")
	spec := e.spec("web", n.Name)
	spec.Process.Command = []string{"httpd", "-f", "-p", "80", "-h", "/var/www"}
	spec.Network.Ports = []engine.PortBinding{{HostIP: "127.0.0.1", ContainerPort: 80}}
	web := e.run(spec)
	if len(web.Ports) != 1 || web.Ports[0].HostPort == 0 {
		t.Fatalf("observed ports %+v, want a chosen host port", web.Ports)
	}
	if body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", web.Ports[0].HostPort)); !strings.Contains(body, "busybox httpd works") {
		t.Fatalf("GET returned %q", body)
	}
}

func TestNetworkModesNoneHostAndContainer(t *testing.T) {
	e := newDriverEnv(t)
	n := e.network("default")
	none := e.spec("none")
	none.Network.Mode = "none"
	c := e.run(none)
	if links := e.mustExec(c.ID, "ls", "/sys/class/net"); strings.TrimSpace(links) != "lo" {
		t.Errorf("network_mode none has interfaces %q", links)
	}
	owner := e.run(e.spec("owner", n.Name))
	joined := e.spec("joined")
	joined.Network.Mode = "container:" + owner.Name
	j := e.run(joined)
	if a, b := e.mustExec(owner.ID, "ip", "-4", "-o", "addr", "show", "eth0"), e.mustExec(j.ID, "ip", "-4", "-o", "addr", "show", "eth0"); containerIP(t, a) != containerIP(t, b) {
		t.Errorf("container: mode does not share the network: %q vs %q", a, b)
	}
	host := e.spec("host")
	host.Network.Mode = "host"
	h := e.run(host)
	if links := e.mustExec(h.ID, "ls", "/sys/class/net"); !strings.Contains(links, n.Bridge) {
		t.Errorf("network_mode host does not see the host's bridge %s: %q", n.Bridge, links)
	}
}

func TestNetworkRemoveInUseFailsThenCleansUp(t *testing.T) {
	e := newDriverEnv(t)
	n := e.network("default")
	c := e.run(e.spec("app", n.Name))
	if err := e.d.RemoveNetwork(e.ctx, n.Name); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("removing a network in use: %v", err)
	}
	if err := e.d.RemoveContainer(e.ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.d.RemoveNetwork(e.ctx, n.Name); err != nil {
		t.Fatal(err)
	}
	if err := e.d.RemoveNetwork(e.ctx, n.Name); err != nil {
		t.Fatalf("removing a removed network: %v", err)
	}
	assertNetworkGone(t, e, n)
}

func freeHostPort(t *testing.T) uint16 {
	t.Helper()
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return uint16(l.Addr().(*net.TCPAddr).Port)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	var lastErr error
	for i := 0; i < 20; i++ {
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			return string(body)
		}
		lastErr = err
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s: %v", url, lastErr)
	return ""
}

func TestNetworkParallelStartsGetDistinctAddressesAndLeaveNothing(t *testing.T) {
	e := newDriverEnv(t)
	n := e.network("default")
	before := threadNetNS(t)
	const count = 8
	ids := make([]string, count)
	errs := make(chan error, count)
	for i := range ids {
		id, err := e.d.CreateContainer(e.ctx, e.spec(fmt.Sprintf("s%d", i), n.Name))
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	for _, id := range ids {
		go func() { errs <- e.d.StartContainer(e.ctx, id) }()
	}
	for range ids {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// Creating namespaces must leave every thread of this process, the main
	// one included, in the namespace it started in.
	if after := threadNetNS(t); len(after) != 1 || after[0] != before[0] {
		t.Fatalf("threads' network namespaces went from %v to %v", before, after)
	}
	seen := map[string]string{}
	for _, id := range ids {
		ip := containerIP(t, e.mustExec(id, "ip", "-4", "-o", "addr", "show", "eth0"))
		if other, dup := seen[ip]; dup {
			t.Fatalf("containers %s and %s both got %s", other[:12], id[:12], ip)
		}
		seen[ip] = id
	}
	for _, id := range ids {
		go func() { errs <- e.d.RemoveContainer(e.ctx, id) }()
	}
	for range ids {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for ip, id := range seen {
		e.assertGone(id, ip, n)
	}
}

func TestNetworkPortTakenByAHostProcessIsFoundBeforeStart(t *testing.T) {
	e := newDriverEnv(t)
	n := e.network("default")
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := uint16(l.Addr().(*net.TCPAddr).Port)
	spec := e.spec("web", n.Name)
	spec.Network.Ports = []engine.PortBinding{{HostIP: "127.0.0.1", HostPort: port, ContainerPort: 80}}
	err = e.d.CheckPorts(spec)
	if err == nil || !strings.Contains(err.Error(), "service web") || !strings.Contains(err.Error(), fmt.Sprintf("127.0.0.1:%d/tcp", port)) {
		t.Fatalf("CheckPorts with the port taken: %v, want an error naming the service and the port", err)
	}
	id, err := e.d.CreateContainer(e.ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.d.StartContainer(e.ctx, id); err == nil {
		t.Fatal("start with the host port taken succeeded")
	}
	if _, err := os.Stat("/var/run/netns/stack-" + id[:24]); err == nil {
		t.Error("the failed start left its netns")
	}
	if leases, _ := os.ReadDir(filepath.Join(e.stateDir, "networks", "ipam", n.Name)); len(leases) > 2 {
		t.Errorf("the failed start left a lease: %v", leases)
	}
}

// threadNetNS lists the distinct network namespaces of this process's
// threads.
func threadNetNS(t *testing.T) []string {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var out []string
	for _, task := range tasks {
		ns, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns", "net"))
		if err == nil && !seen[ns] {
			seen[ns] = true
			out = append(out, ns)
		}
	}
	return out
}
