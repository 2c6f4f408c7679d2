package integration

import (
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// loopbackRange finds n consecutive free TCP ports on 127.0.0.1.
func loopbackRange(t *testing.T, n int) int {
	t.Helper()
	for attempt := 0; attempt < 50; attempt++ {
		start := loopbackPort(t, "tcp")
		free := true
		for i := 1; i < n && free; i++ {
			l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(start+i))
			if err != nil {
				free = false
				continue
			}
			l.Close()
		}
		if free && start+n-1 < 65536 {
			return start
		}
	}
	t.Fatalf("no %d consecutive free loopback ports", n)
	return 0
}

const networkKeys = `
services:
  web:
    image: hello
    hostname: webhost
    ports:
      - "127.0.0.1:{{short}}:8080"
      - target: 8080
        published: "{{long}}"
        host_ip: 127.0.0.1
        protocol: tcp
      - "{{any}}:8080"
      - "127.0.0.1:{{udp}}:5353/udp"
    expose: ["8080", "7000"]
    extra_hosts:
      - "somehost:10.1.2.3"
      - "host.docker.internal:host-gateway"
    dns: [10.0.0.53]
    dns_search: [example.test]
    dns_opt: ["ndots:2", "timeout:1"]
  ranged:
    image: busybox
    command: ["sh", "-c", "httpd -p 9000 -h /var/www && httpd -p 9001 -h /var/www && trap 'exit 0' TERM; while true; do sleep 1; done"]
    ports:
      - "127.0.0.1:{{range}}:9000-9001"
  replicas:
    image: hello
    scale: 2
    ports:
      - "127.0.0.1:{{replicas}}:8080"
  multi:
    image: busybox
    command: ` + loop + `
    networks:
      front:
        ipv4_address: 10.247.13.10
        priority: 1
      back:
        aliases: [db-alias]
        priority: 10
  none:
    image: busybox
    command: ` + loop + `
    network_mode: none
  host:
    image: busybox
    command: ` + loop + `
    network_mode: host
  sidecar:
    image: busybox
    command: ` + loop + `
    network_mode: service:web
  joined:
    image: busybox
    command: ` + loop + `
    network_mode: container:{{webname}}
    depends_on: [web]
  dynamic:
    image: busybox
    command: ` + loop + `
    networks: [front]
networks:
  front:
    ipam:
      config:
        - subnet: 10.247.13.0/24
          ip_range: 10.247.13.128/25
  back: {}
`

// TestKeyNetwork covers ports (short and long syntax, host IP, ranges,
// udp) reached from the host on 127.0.0.1, expose, networks (several,
// aliases, ipv4_address, ip_range, priority as interface order), network_mode (none,
// host, service:NAME, container:NAME), extra_hosts with host-gateway, dns,
// dns_search and dns_opt.
func TestKeyNetwork(t *testing.T) {
	p := newProjectEnv(t, "")
	ports := map[string]int{
		"short": loopbackPort(t, "tcp"), "long": loopbackPort(t, "tcp"), "any": loopbackPort(t, "tcp"),
		"udp": loopbackPort(t, "udp"),
	}
	ranged, replicas := loopbackRange(t, 2), loopbackRange(t, 2)
	yaml := networkKeys
	for k, v := range ports {
		yaml = strings.ReplaceAll(yaml, "{{"+k+"}}", strconv.Itoa(v))
	}
	yaml = strings.ReplaceAll(yaml, "{{range}}", fmt.Sprintf("%d-%d", ranged, ranged+1))
	yaml = strings.ReplaceAll(yaml, "{{replicas}}", fmt.Sprintf("%d-%d", replicas, replicas+1))
	yaml = strings.ReplaceAll(yaml, "{{webname}}", p.name("web", 1))
	p.writeCompose(yaml)
	p.up()
	web := p.name("web", 1)

	for _, key := range []string{"short", "long", "any"} {
		t.Run("ports "+key, func(t *testing.T) {
			url := fmt.Sprintf("http://127.0.0.1:%d/", ports[key])
			var body string
			err := eventually(10*time.Second, func() (err error) { body, err = fetch(url); return err })
			if err != nil || !strings.Contains(body, "hostname: webhost") {
				t.Errorf("GET %s: %v %q", url, err, body)
			}
		})
	}
	t.Run("ports from another container through the host address", func(t *testing.T) {
		// multi is not on web's network; its gateway is a host address.
		multi := p.name("multi", 1)
		gw := strings.Fields(p.sh(multi, "ip -4 route show default"))
		if len(gw) < 3 {
			t.Fatalf("multi has no default route: %v", gw)
		}
		if body, err := fetchFromContainerURL(p, multi, fmt.Sprintf("http://%s:%d/", gw[2], ports["any"])); err != nil || !strings.Contains(body, "hostname: webhost") {
			t.Errorf("GET %s:%d from multi: %v %q", gw[2], ports["any"], err, body)
		}
	})
	t.Run("ports range", func(t *testing.T) {
		for _, port := range []int{ranged, ranged + 1} {
			url := fmt.Sprintf("http://127.0.0.1:%d/", port)
			var body string
			err := eventually(10*time.Second, func() (err error) { body, err = fetch(url); return err })
			if err != nil || !strings.Contains(body, "busybox httpd works") {
				t.Errorf("GET %s: %v %q", url, err, body)
			}
		}
	})
	t.Run("ports range across replicas", func(t *testing.T) {
		hosts := map[string]bool{}
		for n, port := range []int{replicas, replicas + 1} {
			want := p.containerNamed(p.name("replicas", n+1)).ID[:12]
			url := fmt.Sprintf("http://127.0.0.1:%d/", port)
			var body string
			err := eventually(10*time.Second, func() (err error) { body, err = fetch(url); return err })
			if err != nil || !strings.Contains(body, "hostname: "+want) {
				t.Errorf("GET %s: %v %q, want replica %d (%s)", url, err, body, n+1, want)
			}
			hosts[want] = true
		}
		if len(hosts) != 2 {
			t.Errorf("both ports answer from %v", hosts)
		}
	})
	t.Run("ports host IP", func(t *testing.T) {
		got := map[string]string{}
		for _, pb := range p.containerNamed(web).Ports {
			got[fmt.Sprintf("%d/%s", pb.HostPort, pb.Protocol)] = pb.HostIP
		}
		want := map[string]string{
			fmt.Sprintf("%d/tcp", ports["short"]): "127.0.0.1", fmt.Sprintf("%d/tcp", ports["long"]): "127.0.0.1",
			fmt.Sprintf("%d/tcp", ports["any"]): "", fmt.Sprintf("%d/udp", ports["udp"]): "127.0.0.1",
		}
		for k, ip := range want {
			if g, ok := got[k]; !ok || (g != ip && !(ip == "" && g == "0.0.0.0")) {
				t.Errorf("published %s on %q (present %v), want %q; all: %v", k, g, ok, ip, got)
			}
		}
	})
	t.Run("ports udp", func(t *testing.T) {
		// Nothing listens on 5353 inside: each datagram that arrives is
		// counted as Udp NoPorts in the container's network namespace.
		before := udpNoPorts(p, web)
		conn, err := net.Dial("udp4", fmt.Sprintf("127.0.0.1:%d", ports["udp"]))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		err = eventually(5*time.Second, func() error {
			if _, err := conn.Write([]byte("ping")); err != nil {
				return err
			}
			if after := udpNoPorts(p, web); after <= before {
				return fmt.Errorf("Udp NoPorts in the container stayed at %d", after)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	})
	t.Run("expose", func(t *testing.T) {
		if got := p.stored(web).Network.Expose; !slices.Equal(got, []string{"8080", "7000"}) {
			t.Errorf("stored expose = %v", got)
		}
	})
	t.Run("extra_hosts and host-gateway", func(t *testing.T) {
		hosts := p.sh(web, "cat /etc/hosts")
		gw := networkNamed(t, p, p.project+"_default").Gateway
		for _, want := range []string{"10.1.2.3\tsomehost", gw + "\thost.docker.internal"} {
			if !strings.Contains(hosts, want) {
				t.Errorf("/etc/hosts lacks %q:\n%s", want, hosts)
			}
		}
		if gw == "" || !strings.Contains(p.sh(web, "ip -4 route"), "default via "+gw) {
			t.Errorf("host-gateway %q is not the container's default gateway", gw)
		}
	})
	t.Run("dns dns_search dns_opt", func(t *testing.T) {
		got := p.sh(web, "cat /etc/resolv.conf")
		for _, want := range []string{"nameserver 10.0.0.53", "search example.test", "options ndots:2 timeout:1"} {
			if !slices.Contains(trimmedLines(got), want) {
				t.Errorf("/etc/resolv.conf lacks %q:\n%s", want, got)
			}
		}
	})
	t.Run("networks priority and ipv4_address", func(t *testing.T) {
		multi := p.name("multi", 1)
		back := networkNamed(t, p, p.project+"_back")
		eth0 := p.sh(multi, "ip -4 -o addr show dev eth0")
		eth1 := p.sh(multi, "ip -4 -o addr show dev eth1")
		if ip := addrOf(eth0); ip == "" || !inSubnet(t, ip, back.Subnet) {
			t.Errorf("eth0 %q is not on back %s (priority 10 comes first)", eth0, back.Subnet)
		}
		if !strings.Contains(eth1, "inet 10.247.13.10/24") {
			t.Errorf("eth1 %q, want front's ipv4_address 10.247.13.10/24 (outside the ip_range, as Docker allows)", eth1)
		}
		if eth0 := p.sh(p.name("dynamic", 1), "ip -4 -o addr show dev eth0"); !inSubnet(t, addrOf(eth0), "10.247.13.128/25") {
			t.Errorf("a container without an ipv4_address got %q, outside front's ip_range 10.247.13.128/25", eth0)
		}
		nets := p.containerNamed(multi).Networks
		if !slices.Contains(nets, p.project+"_front") || !slices.Contains(nets, p.project+"_back") {
			t.Errorf("observed networks %v", nets)
		}
	})
	t.Run("networks aliases stored", func(t *testing.T) {
		var aliases []string
		for _, a := range p.stored(p.name("multi", 1)).Network.Networks {
			if a.Network == p.project+"_back" {
				aliases = a.Aliases
			}
		}
		for _, want := range []string{"db-alias", "multi", p.name("multi", 1)} {
			if !slices.Contains(aliases, want) {
				t.Errorf("aliases on back %v lack %s", aliases, want)
			}
		}
	})
	netns := func(name string) string {
		return mustReadlink(t, fmt.Sprintf("/proc/%d/ns/net", p.containerNamed(name).Pid))
	}
	t.Run("network_mode none", func(t *testing.T) {
		links := p.sh(p.name("none", 1), "ip -o link | cut -d: -f2")
		if strings.TrimSpace(links) != "lo" {
			t.Errorf("interfaces with network_mode none: %q, want lo only", links)
		}
	})
	t.Run("network_mode host", func(t *testing.T) {
		if got, self := netns(p.name("host", 1)), mustReadlink(t, "/proc/self/ns/net"); got != self {
			t.Errorf("host mode netns %s, want the host's %s", got, self)
		}
		hostname, _ := os.Hostname()
		if got := p.sh(p.name("host", 1), "hostname"); got != hostname {
			t.Errorf("host mode hostname %q, want %q", got, hostname)
		}
	})
	t.Run("network_mode service and container", func(t *testing.T) {
		want := netns(web)
		for _, svc := range []string{"sidecar", "joined"} {
			if got := netns(p.name(svc, 1)); got != want {
				t.Errorf("%s netns %s, want web's %s", svc, got, want)
			}
		}
		if body, err := fetchFromContainer(p, p.name("sidecar", 1), 8080); err != nil || !strings.Contains(body, "webhost") {
			t.Errorf("sidecar GET 127.0.0.1:8080 (web's server): %v %q", err, body)
		}
	})
}

// udpNoPorts is the Udp NoPorts counter of the container's network
// namespace, read from the host through its PID.
func udpNoPorts(p *projectEnv, name string) int {
	p.t.Helper()
	var header []string
	for _, l := range strings.Split(p.proc(name, "net/snmp"), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if header == nil {
			header = f
			continue
		}
		for i, h := range header {
			if h == "NoPorts" && i < len(f) {
				n, _ := strconv.Atoi(f[i])
				return n
			}
		}
	}
	p.t.Fatalf("no Udp NoPorts in /proc/<pid>/net/snmp of %s", name)
	return 0
}

// addrOf returns the IPv4 address of an `ip -o addr` line.
func addrOf(line string) string {
	f := strings.Fields(line)
	for i, w := range f {
		if w == "inet" && i+1 < len(f) {
			ip, _, _ := strings.Cut(f[i+1], "/")
			return ip
		}
	}
	return ""
}

func inSubnet(t *testing.T, ip, cidr string) bool {
	t.Helper()
	_, n, err := net.ParseCIDR(cidr)
	if err != nil {
		t.Fatalf("subnet %q: %v", cidr, err)
	}
	return n.Contains(net.ParseIP(ip))
}

const sharedNetns = `
services:
  web:
    image: hello
    environment:
      GENERATION: "1"
  sidecar:
    image: busybox
    command: ` + loop + `
    network_mode: service:web
    ipc: service:web
    pid: service:web
`

// TestKeyNetworkModeServiceFollowsARecreatedService recreates the service
// whose network, ipc and pid namespaces another joins: the joiner must end
// up in the new namespaces, still reaching the service on 127.0.0.1.
func TestKeyNetworkModeServiceFollowsARecreatedService(t *testing.T) {
	p := newProjectEnv(t, sharedNetns)
	p.up()
	web, sidecar := p.name("web", 1), p.name("sidecar", 1)
	before := p.containerNamed(web).ID
	p.writeCompose(strings.Replace(sharedNetns, `GENERATION: "1"`, `GENERATION: "2"`, 1))
	p.up()
	if p.containerNamed(web).ID == before {
		t.Fatal("web was not recreated")
	}
	if c := p.containerNamed(sidecar); c.Status != "running" {
		t.Fatalf("sidecar is %s after web was recreated", c.Status)
	}
	for _, kind := range []string{"net", "ipc", "pid"} {
		ns := func(name string) string {
			return mustReadlink(t, fmt.Sprintf("/proc/%d/ns/%s", p.containerNamed(name).Pid, kind))
		}
		if ns(sidecar) != ns(web) {
			t.Errorf("sidecar %s namespace %s, want the new web's %s", kind, ns(sidecar), ns(web))
		}
	}
	if body, err := fetchFromContainer(p, sidecar, 8080); err != nil || !strings.Contains(body, "GENERATION=2") {
		t.Errorf("sidecar GET 127.0.0.1:8080: %v %q, want the new web", err, body)
	}
}
