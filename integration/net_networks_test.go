package integration

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

const networksProject = `
services:
  plain:
    image: busybox
    command: ` + loop + `
  a1:
    image: busybox
    command: ` + loop + `
    networks: [alpha]
  a2:
    image: busybox
    command: ` + loop + `
    networks: [alpha]
  b1:
    image: busybox
    command: ` + loop + `
    networks: [beta]
  both:
    image: busybox
    command: ` + loop + `
    networks: [alpha, beta]
  inner:
    image: busybox
    command: ` + loop + `
    networks: [sealed]
  guest:
    image: busybox
    command: ` + loop + `
    networks: [shared]
networks:
  alpha:
    ipam:
      config:
        - subnet: 10.247.21.0/24
          gateway: 10.247.21.254
    labels:
      com.example.tier: alpha
  beta: {}
  sealed:
    internal: true
  shared:
    external: true
    name: SHARED
`

const providerProject = `
services:
  host:
    image: busybox
    command: ` + loop + `
    networks: [shared]
networks:
  shared:
    name: SHARED
`

// ipOn is the container's IPv4 address on interface dev.
func ipOn(p *projectEnv, name, dev string) string {
	p.t.Helper()
	ip := addrOf(p.sh(name, "ip -4 -o addr show dev "+dev))
	if ip == "" {
		p.t.Fatalf("%s has no IPv4 address on %s", name, dev)
	}
	return ip
}

// reachesSoon pings ip from the container until it answers, for up to 10
// seconds (a loaded host may be slow to forward the first packets).
func reachesSoon(p *projectEnv, name, ip string) bool {
	p.t.Helper()
	return eventually(10*time.Second, func() error {
		if !reaches(p, name, ip) {
			return fmt.Errorf("%s does not answer", ip)
		}
		return nil
	}) == nil
}

// reaches pings ip once from the container, bounded by 2 seconds.
func reaches(p *projectEnv, name, ip string) bool {
	p.t.Helper()
	return p.exec(name, "timeout", "3", "ping", "-c", "1", "-W", "2", ip).code == 0
}

// TestNetNetworks brings up services on the default network, a network with
// a given subnet and gateway, one with a chosen subnet, an internal one and
// an external one made by another project, and checks addresses, routes,
// reachability by IP (never leaving the test's bridges) and NAT rules.
func TestNetNetworks(t *testing.T) {
	p := newProjectEnv(t, "")
	shared := p.project + "-shared"
	p.writeCompose(strings.ReplaceAll(networksProject, "SHARED", shared))

	providerDir := filepath.Join(p.dir, "provider")
	if err := os.MkdirAll(providerDir, 0o755); err != nil {
		t.Fatal(err)
	}
	provider := p.project + "-prov"
	compose := "name: " + provider + "\n" + strings.ReplaceAll(providerProject, "SHARED", shared)
	if err := os.WriteFile(filepath.Join(providerDir, "compose.yaml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	runProvider := func(args ...string) {
		t.Helper()
		if r := p.runIn(providerDir, nil, args...); r.code != 0 {
			t.Fatalf("provider %v: exit %d\n%s%s", args, r.code, r.stdout, r.stderr)
		}
	}
	t.Cleanup(func() { p.runIn(providerDir, nil, "down", "-v", "-t", "0") })

	t.Run("external network must exist", func(t *testing.T) {
		r := p.run("up", "-d")
		if r.code == 0 || !strings.Contains(r.stderr, shared) || !strings.Contains(r.stderr, "external") {
			t.Fatalf("up with a missing external network: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if st := p.observe(); len(st.Containers) != 0 {
			t.Errorf("a failed up left containers: %v", fingerprint(st))
		}
	})
	runProvider("up", "-d")
	p.up()

	nets := map[string]string{}
	for _, n := range p.observe().Networks {
		nets[n.Name] = n.Subnet
	}
	t.Run("default network", func(t *testing.T) {
		def := networkNamed(t, p, p.project+"_default")
		if ip := ipOn(p, p.name("plain", 1), "eth0"); !inSubnet(t, ip, def.Subnet) {
			t.Errorf("plain %s is not on %s_default %s", ip, p.project, def.Subnet)
		}
	})
	t.Run("subnet gateway and labels", func(t *testing.T) {
		alpha := networkNamed(t, p, p.project+"_alpha")
		if alpha.Subnet != "10.247.21.0/24" || alpha.Gateway != "10.247.21.254" || alpha.Labels["com.example.tier"] != "alpha" {
			t.Errorf("alpha observed as %+v", alpha)
		}
		if route := p.sh(p.name("a1", 1), "ip -4 route show default"); !strings.Contains(route, "via 10.247.21.254") {
			t.Errorf("a1 default route %q, want via the gateway 10.247.21.254", route)
		}
	})
	t.Run("chosen subnets do not collide", func(t *testing.T) {
		var subnets []*net.IPNet
		for name, s := range nets {
			_, n, err := net.ParseCIDR(s)
			if err != nil {
				t.Fatalf("network %s subnet %q: %v", name, s, err)
			}
			for _, o := range subnets {
				if o.Contains(n.IP) || n.Contains(o.IP) {
					t.Errorf("subnets %s and %s overlap", o, n)
				}
			}
			subnets = append(subnets, n)
		}
		bridges := map[string]bool{}
		for _, n := range p.observe().Networks {
			bridges[n.Bridge] = true
		}
		routes, err := exec.Command("ip", "-4", "route").Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSpace(string(routes)), "\n") {
			f := strings.Fields(l)
			_, dst, err := net.ParseCIDR(f[0])
			if err != nil || (len(f) > 2 && f[1] == "dev" && bridges[f[2]]) {
				continue // the default route, or one of ours
			}
			for _, n := range subnets {
				if n.Contains(dst.IP) || dst.Contains(n.IP) {
					t.Errorf("subnet %s overlaps the host route %q", n, l)
				}
			}
		}
		if len(subnets) != 5 {
			t.Errorf("want 5 networks (default, alpha, beta, sealed, external), got %v", nets)
		}
	})
	t.Run("internal has no route out", func(t *testing.T) {
		inner := p.name("inner", 1)
		if route := p.sh(inner, "ip -4 route"); strings.Contains(route, "default") || route == "" {
			t.Errorf("internal network routes: %q, want only the subnet", route)
		}
		if !networkNamed(t, p, p.project+"_sealed").Internal {
			t.Error("sealed is not observed as internal")
		}
	})
	t.Run("two networks two interfaces", func(t *testing.T) {
		both := p.name("both", 1)
		if ip := ipOn(p, both, "eth0"); !inSubnet(t, ip, nets[p.project+"_alpha"]) {
			t.Errorf("both eth0 %s not on alpha", ip)
		}
		if ip := ipOn(p, both, "eth1"); !inSubnet(t, ip, nets[p.project+"_beta"]) {
			t.Errorf("both eth1 %s not on beta", ip)
		}
	})
	a1, a2, b1, both := p.name("a1", 1), p.name("a2", 1), p.name("b1", 1), p.name("both", 1)
	t.Run("same network reaches by IP", func(t *testing.T) {
		if ip := ipOn(p, a2, "eth0"); !reachesSoon(p, a1, ip) {
			t.Errorf("a1 cannot reach a2 at %s on the same network", ip)
		}
		if ip := ipOn(p, b1, "eth0"); !reachesSoon(p, both, ip) {
			t.Errorf("both cannot reach b1 at %s on beta", ip)
		}
	})
	t.Run("different networks cannot reach each other", func(t *testing.T) {
		if ip := ipOn(p, b1, "eth0"); reaches(p, a1, ip) {
			t.Errorf("a1 (alpha) reaches b1 (beta) at %s", ip)
		}
		if ip := ipOn(p, a1, "eth0"); reaches(p, b1, ip) {
			t.Errorf("b1 (beta) reaches a1 (alpha) at %s", ip)
		}
		if ip := ipOn(p, p.name("inner", 1), "eth0"); reaches(p, a1, ip) {
			t.Errorf("a1 reaches inner on the internal network at %s", ip)
		}
	})
	t.Run("external network joins another project", func(t *testing.T) {
		guest := p.name("guest", 1)
		if ip := ipOn(p, guest, "eth0"); !inSubnet(t, ip, nets[shared]) {
			t.Errorf("guest %s is not on the external network %s", ip, nets[shared])
		}
		other := &projectEnv{stackEnv: p.stackEnv, project: provider}
		if ip := ipOn(other, provider+"-host-1", "eth0"); !reachesSoon(p, guest, ip) {
			t.Errorf("guest cannot reach the provider's container at %s on the external network", ip)
		}
	})
	t.Run("leases under the state directory", func(t *testing.T) {
		var leases []string
		err := filepath.WalkDir(p.stateDir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				leases = append(leases, filepath.Base(path))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, svc := range []string{"a1", "a2", "b1"} {
			if ip := ipOn(p, p.name(svc, 1), "eth0"); !slices.Contains(leases, ip) {
				t.Errorf("no lease file for %s's %s under the state directory", svc, ip)
			}
		}
		for name := range nets {
			if _, err := os.Stat(filepath.Join("/var/lib/cni/networks", name)); err == nil {
				t.Errorf("network %s keeps leases in the host-wide /var/lib/cni", name)
			}
			if m, _ := filepath.Glob(filepath.Join("/var/lib/cni/results", name+"-*")); len(m) > 0 {
				t.Errorf("network %s keeps CNI results in /var/lib/cni: %v", name, m)
			}
		}
	})
	t.Run("outbound NAT except internal", func(t *testing.T) {
		nat := iptablesNAT(t)
		for _, key := range []string{"alpha", "beta"} {
			if !masqueraded(nat, nets[p.project+"_"+key]) {
				t.Errorf("no MASQUERADE for %s %s in the nat table", key, nets[p.project+"_"+key])
			}
		}
		if masqueraded(nat, nets[p.project+"_sealed"]) {
			t.Errorf("internal network %s is masqueraded", nets[p.project+"_sealed"])
		}
		// One rule per network, not the CNI bridge plugin's chain per
		// container (its rules carry the network's name in a comment).
		for name := range nets {
			if l := grepText(nat, `name: \"`+name+`\"`); l != "" {
				t.Errorf("per-container masquerade rules for %s:\n%s", name, l)
			}
		}
	})
	t.Run("forwarded traffic accepted per network after isolation", func(t *testing.T) {
		rules := hostRules(t)
		var forward []string
		for _, l := range strings.Split(rules, "\n") {
			if strings.HasPrefix(l, "-A FORWARD ") {
				forward = append(forward, l)
			}
		}
		if len(forward) < 2 || forward[0] != "-A FORWARD -j STACK-ISOLATION-1" || forward[1] != "-A FORWARD -j STACK-FORWARD" {
			t.Errorf("FORWARD does not begin with stack's isolation, then its accept rules:\n%s", strings.Join(forward, "\n"))
		}
		for _, key := range []string{"alpha", "beta", "sealed"} {
			n := networkNamed(t, p, p.project+"_"+key)
			if !acceptsForwarded(rules, n.Subnet, n.Bridge) {
				t.Errorf("no STACK-FORWARD rules for %s %s", key, n.Subnet)
			}
		}
		// Not the CNI firewall plugin's rules per container.
		if ip := ipOn(p, p.name("a1", 1), "eth0"); strings.Contains(rules, "-s "+ip+"/32 -j ACCEPT") {
			t.Errorf("per-container accept rule for a1 %s:\n%s", ip, grepText(rules, ip))
		}
	})
	t.Run("rules a reboot flushed come back with the next start", func(t *testing.T) {
		alpha := networkNamed(t, p, p.project+"_alpha")
		masq := func() bool { return masqueraded(iptablesNAT(t), alpha.Subnet) }
		isolated := func() bool { return strings.Contains(hostRules(t), "-i "+alpha.Bridge+" ! -o "+alpha.Bridge+" ") }
		accepted := func() bool { return acceptsForwarded(hostRules(t), alpha.Subnet, alpha.Bridge) }
		deleteHostRules(t, func(rule string) bool { return strings.Contains(rule, alpha.Bridge) })
		if masq() || isolated() || accepted() {
			t.Fatalf("alpha's rules are still there after deleting them")
		}
		p.mustRun("restart", "-t", "0", "a1")
		if !masq() {
			t.Errorf("a1 restarted, and alpha %s is not masqueraded", alpha.Subnet)
		}
		if !isolated() {
			t.Errorf("a1 restarted, and alpha's bridge %s has no isolation rule", alpha.Bridge)
		}
		if !accepted() {
			t.Errorf("a1 restarted, and alpha's forwarded traffic is not accepted")
		}
	})
	t.Run("down keeps the external network", func(t *testing.T) {
		p.mustRun("down", "-v", "-t", "0")
		if st := p.observe(); len(st.ProjectContainers(p.project)) != 0 {
			t.Errorf("containers left after down: %v", fingerprint(st))
		}
		found := false
		for _, n := range p.observe().Networks {
			if n.Name == shared {
				found = true
			}
			if n.Project == p.project {
				t.Errorf("network %s of the project left after down", n.Name)
			}
		}
		if !found {
			t.Errorf("down -v removed the external network %s", shared)
		}
	})
}

// iptablesNAT is the host's nat table as `iptables -t nat -S` prints it.
func iptablesNAT(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("iptables", "-w", "-t", "nat", "-S").Output()
	if err != nil {
		t.Fatalf("iptables -t nat -S: %v", err)
	}
	return string(out)
}

// acceptsForwarded reports whether STACK-FORWARD accepts what the subnet
// sends from its bridge and the replies to it.
func acceptsForwarded(rules, subnet, bridge string) bool {
	out, back := false, false
	for _, l := range strings.Split(rules, "\n") {
		if !strings.HasPrefix(l, "-A STACK-FORWARD ") || !strings.HasSuffix(l, "-j ACCEPT") {
			continue
		}
		out = out || strings.Contains(l, "-s "+subnet+" -i "+bridge+" ")
		back = back || strings.Contains(l, "-d "+subnet+" -o "+bridge+" ") && strings.Contains(l, "RELATED,ESTABLISHED")
	}
	return out && back
}

// masqueraded reports whether POSTROUTING masquerades what the subnet sends
// out of its bridge: the one rule stack adds with a network.
func masqueraded(nat, subnet string) bool {
	for _, l := range strings.Split(nat, "\n") {
		if strings.HasPrefix(l, "-A POSTROUTING -s "+subnet+" ") && strings.Contains(l, " ! -o ") && strings.HasSuffix(l, "-j MASQUERADE") {
			return true
		}
	}
	return false
}
