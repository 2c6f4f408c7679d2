package integration

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

const sleeper = `["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]`

// names: api (alias backend) and web are hello servers, client and the
// three workers are busybox, loner is alone on another network.
var namesCompose = `
services:
  api:
    image: hello
    environment: {ROLE: api}
    networks:
      default:
        aliases: [backend]
  web:
    image: hello
    environment: {ROLE: web}
  client:
    image: busybox
    command: ` + sleeper + `
  worker:
    image: busybox
    command: ` + sleeper + `
    scale: 3
  loner:
    image: busybox
    command: ` + sleeper + `
    networks: [isolated]
networks:
  isolated:
    internal: true
`

// Every way of naming a service resolves from a container on its network,
// and reaches it with ping and wget; a scaled service answers with all its
// replicas; names on another network do not resolve; other names go to the
// upstream, except from an internal network; the daemon listens on port 53 of the gateways and nowhere else.
func TestDNSNamesResolveBetweenServices(t *testing.T) {
	e := newDNSEnv(t, namesCompose)
	e.mustRun("up", "-d")
	st := e.observe()
	p := e.project
	def := p + "_default"
	api := e.container(st, p+"-api-1")
	apiIP := api.Addresses[def]
	client := e.container(st, p+"-client-1").ID
	loner := e.container(st, p+"-loner-1").ID
	ns := e.namespace

	resolv := execIn(t, ns, client, "cat", "/etc/resolv.conf").stdout
	if gw := gateway(t, st, def); !strings.Contains(resolv, "nameserver "+gw+"\n") || !strings.Contains(resolv, "options ndots:0") {
		t.Errorf("client's resolv.conf should point at gateway %s with ndots:0:\n%s", gw, resolv)
	}

	t.Run("names", func(t *testing.T) {
		for _, name := range []string{"api", "backend", p + "-api-1", "api." + p, p + "-api-1." + def, "api." + def, api.Hostname} {
			got, r := nslookup(t, ns, client, name)
			if !slices.Equal(got, []string{apiIP}) {
				t.Errorf("nslookup %s from client = %v (exit %d), want [%s]\n%s%s", name, got, r.code, apiIP, r.stdout, r.stderr)
			}
		}
	})

	t.Run("ping and wget", func(t *testing.T) {
		if r := execIn(t, ns, client, "ping", "-c1", "-W2", "backend"); r.code != 0 {
			t.Errorf("ping -c1 backend: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r := execIn(t, ns, client, "timeout", "5", "wget", "-qO-", "http://api."+p+":8080/")
		if r.code != 0 || !strings.Contains(r.stdout, "ROLE=api") {
			t.Errorf("wget http://api.%s:8080/: exit %d\n%s%s", p, r.code, r.stdout, r.stderr)
		}
		// web calls api by its service name, from inside its own container.
		r = execIn(t, ns, client, "timeout", "5", "wget", "-qO-", "http://web:8080/call?url=http://api:8080/")
		if r.code != 0 || !strings.Contains(r.stdout, "ROLE=api") {
			t.Errorf("web calling api by name: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("scaled service answers every replica", func(t *testing.T) {
		var want []string
		for i := 1; i <= 3; i++ {
			want = append(want, e.container(st, fmt.Sprintf("%s-worker-%d", p, i)).Addresses[def])
		}
		slices.Sort(want)
		got, r := nslookup(t, ns, client, "worker")
		if !slices.Equal(got, want) {
			t.Errorf("nslookup worker = %v, want the 3 replicas %v\n%s", got, want, r.stdout)
		}
	})

	t.Run("other networks do not resolve", func(t *testing.T) {
		for _, name := range []string{"api", "api." + p, p + "-api-1." + def} {
			if got, r := nslookup(t, ns, loner, name); len(got) != 0 || r.code == 0 {
				t.Errorf("loner (network isolated) resolved %s to %v (exit %d)", name, got, r.code)
			}
		}
		if got, _ := nslookup(t, ns, client, "loner"); len(got) != 0 {
			t.Errorf("client resolved loner (another network) to %v", got)
		}
		if got, _ := nslookup(t, ns, loner, "loner"); len(got) != 1 {
			t.Errorf("loner does not resolve itself on its network: %v", got)
		}
		// Asking the other network's DNS server directly is refused: it
		// answers only its own subnet.
		isolated := p + "_isolated"
		r := execIn(t, ns, client, "nslookup", "loner", gateway(t, st, isolated))
		if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "REFUSED") {
			t.Errorf("client asked %s's server directly: want REFUSED\n%s%s", isolated, r.stdout, r.stderr)
		}
	})

	t.Run("internal networks forward nothing", func(t *testing.T) {
		before := e.upstream.queries.Load()
		if got, r := nslookup(t, ns, loner, strings.TrimSuffix(forwardedName, ".")); len(got) != 0 || r.code == 0 {
			t.Errorf("loner (internal network) resolved %s to %v", forwardedName, got)
		}
		if n := e.upstream.queries.Load() - before; n != 0 {
			t.Errorf("a query from an internal network reached the upstream (%d queries)", n)
		}
	})

	t.Run("forwarded to the upstream", func(t *testing.T) {
		before := e.upstream.queries.Load()
		got, r := nslookup(t, ns, client, strings.TrimSuffix(forwardedName, "."))
		if !slices.Equal(got, []string{forwardedIP}) {
			t.Errorf("nslookup %s = %v, want %s from the test upstream\n%s%s", forwardedName, got, forwardedIP, r.stdout, r.stderr)
		}
		if e.upstream.queries.Load() == before {
			t.Error("the test upstream saw no query")
		}
	})

	t.Run("AAAA of an IPv4-only name is NOERROR without data", func(t *testing.T) {
		rcode, addrs, err := askHost(gateway(t, st, def), "api", dnsmessage.TypeAAAA)
		if err != nil || rcode != dnsmessage.RCodeSuccess || len(addrs) != 0 {
			t.Errorf("AAAA api: rcode %v, %v, err %v; want NOERROR and no answer", rcode, addrs, err)
		}
	})

	t.Run("PTR answers the container name", func(t *testing.T) {
		a := netip.MustParseAddr(apiIP).As4()
		rev := fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa", a[3], a[2], a[1], a[0])
		rcode, names, err := askHost(gateway(t, st, def), rev, dnsmessage.TypePTR)
		if err != nil || rcode != dnsmessage.RCodeSuccess || !slices.Equal(names, []string{p + "-api-1."}) {
			t.Errorf("PTR %s: rcode %v, %v, err %v; want %s-api-1.", rev, rcode, names, err, p)
		}
	})

	t.Run("status and listeners", func(t *testing.T) {
		ds := e.status()
		gws := map[string]bool{}
		for _, n := range ds.Networks {
			if n.Listen != n.Gateway+":53" {
				t.Errorf("network %s: listen %q, want %s:53 (error %q)", n.Name, n.Listen, n.Gateway, n.Error)
			}
			gws[n.Gateway] = true
		}
		if len(ds.Networks) != 2 {
			t.Errorf("status shows %d networks, want 2 (default, isolated): %+v", len(ds.Networks), ds.Networks)
		}
		text := e.mustRun("daemon", "status")
		for _, want := range []string{"network " + def, "network " + p + "_isolated", "listening on", "worker"} {
			if !strings.Contains(text, want) {
				t.Errorf("daemon status lacks %q:\n%s", want, text)
			}
		}
		socks := daemonSockets53(t, ds.PID)
		if len(socks) != 2*len(gws) {
			t.Errorf("the daemon's port-53 sockets: %v, want udp and tcp on each gateway %v", socks, gws)
		}
		for _, s := range socks {
			addr := strings.TrimSuffix(strings.Fields(s)[1], ":53")
			if !gws[addr] {
				t.Errorf("the daemon listens on %s, which is not a stack gateway", s)
			}
		}
		t.Logf("daemon status:\n%s", text)
	})
}

// Two projects share an external network; each has a db. <service>.<project>
// tells them apart, from either side.
func TestDNSTwoProjectsSharingANetworkEachGetTheirOwnDb(t *testing.T) {
	e := newDNSEnv(t, `
services:
  db:
    image: busybox
    command: `+sleeper+`
    networks: [shared]
  client:
    image: busybox
    command: `+sleeper+`
    networks: [shared]
networks:
  shared: {}
`)
	e.mustRun("up", "-d")
	shared := e.project + "_shared"
	other := e.project + "b"
	dir := t.TempDir()
	compose := fmt.Sprintf(`name: %s
services:
  db:
    image: busybox
    command: %s
    networks: [shared]
networks:
  shared:
    external: true
    name: %s
`, other, sleeper, shared)
	file := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(file, []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.run("-f", file, "down", "-t", "0") })
	e.mustRun("-f", file, "up", "-d")

	st := e.observe()
	all := e.stateAll()
	dbA := e.container(st, e.project+"-db-1").Addresses[shared]
	dbB := e.container(all, other+"-db-1").Addresses[shared]
	client := e.container(st, e.project+"-client-1").ID
	for name, want := range map[string]string{"db." + e.project: dbA, "db." + other: dbB} {
		got, r := nslookup(t, e.namespace, client, name)
		if !slices.Equal(got, []string{want}) {
			t.Errorf("nslookup %s = %v, want [%s]\n%s%s", name, got, want, r.stdout, r.stderr)
		}
	}
	if r := execIn(t, e.namespace, client, "ping", "-c1", "-W2", "db."+other); r.code != 0 {
		t.Errorf("ping db.%s: exit %d\n%s", other, r.code, r.stdout)
	}
}

// A container on two networks asks the DNS server of its first one and
// resolves the names of both; one on the first network only does not
// resolve the second's.
func TestDNSContainerOnTwoNetworksResolvesBoth(t *testing.T) {
	e := newDNSEnv(t, `
services:
  api:
    image: busybox
    command: `+sleeper+`
    networks: [zback]
  client:
    image: busybox
    command: `+sleeper+`
    networks: [afront, zback]
  edge:
    image: busybox
    command: `+sleeper+`
    networks: [afront]
networks:
  afront: {}
  zback: {}
`)
	e.mustRun("up", "-d")
	st := e.observe()
	p := e.project
	client := e.container(st, p+"-client-1").ID
	apiIP := e.container(st, p+"-api-1").Addresses[p+"_zback"]
	resolv := execIn(t, e.namespace, client, "cat", "/etc/resolv.conf").stdout
	if gw := gateway(t, st, p+"_afront"); !strings.Contains(resolv, "nameserver "+gw+"\n") {
		t.Fatalf("client's first network is afront; resolv.conf should name its gateway %s:\n%s", gw, resolv)
	}
	for _, name := range []string{"api", "api." + p, p + "-api-1." + p + "_zback"} {
		if got, r := nslookup(t, e.namespace, client, name); !slices.Equal(got, []string{apiIP}) {
			t.Errorf("client (afront, zback) nslookup %s = %v, want [%s]\n%s%s", name, got, apiIP, r.stdout, r.stderr)
		}
	}
	if got, _ := nslookup(t, e.namespace, e.container(st, p+"-edge-1").ID, "api"); len(got) != 0 {
		t.Errorf("edge (afront only) resolved api to %v", got)
	}
}

// resolv.conf per network mode: the gateway with ndots:0 on a network,
// the service's dns servers when it sets them (as Docker does), the host's
// file with the host's network, and no nameserver without a network.
func TestDNSResolvConfFollowsTheNetworkMode(t *testing.T) {
	e := newDNSEnv(t, `
services:
  attached:
    image: busybox
    command: `+sleeper+`
    dns_search: [corp.example]
  explicit:
    image: busybox
    command: `+sleeper+`
    dns: [192.0.2.53]
  hostnet:
    image: busybox
    command: `+sleeper+`
    network_mode: host
  isolated:
    image: busybox
    command: `+sleeper+`
    network_mode: none
`)
	e.mustRun("up", "-d")
	st := e.observe()
	p := e.project
	read := func(service string) string {
		return execIn(t, e.namespace, e.container(st, p+"-"+service+"-1").ID, "cat", "/etc/resolv.conf").stdout
	}
	gw := gateway(t, st, p+"_default")
	if got, want := read("attached"), "nameserver "+gw+"\nsearch corp.example\noptions ndots:0\n"; !strings.HasSuffix(got, want) {
		t.Errorf("attached: resolv.conf =\n%s\nwant it to end with\n%s", got, want)
	}
	if got := read("explicit"); !strings.Contains(got, "nameserver 192.0.2.53\n") || strings.Contains(got, gw) {
		t.Errorf("explicit dns: resolv.conf =\n%s\nwant only nameserver 192.0.2.53", got)
	}
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	if got := read("hostnet"); got != string(host) {
		t.Errorf("network_mode host: resolv.conf =\n%s\nwant the host's\n%s", got, host)
	}
	if got := read("isolated"); strings.Contains(got, "nameserver ") {
		t.Errorf("network_mode none: resolv.conf =\n%s\nwant no nameserver", got)
	}
}
