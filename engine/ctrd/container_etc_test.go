package ctrd

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stackdev/stack/engine"
)

func TestResolvConfUsesServiceSettings(t *testing.T) {
	c := &Client{opts: Options{StateDir: t.TempDir()}}
	spec := engine.ContainerSpec{Network: engine.NetworkConfig{DNS: []string{"192.0.2.53"}, DNSSearch: []string{"example.com"}, DNSOptions: []string{"ndots:2"}}}
	got := string(c.resolvConf(spec))
	want := "nameserver 192.0.2.53\nsearch example.com\noptions ndots:2\n"
	if got != want {
		t.Fatalf("resolv.conf = %q, want %q", got, want)
	}
}

func TestResolvConfPointsAtTheFirstNetworksGateway(t *testing.T) {
	c := &Client{opts: Options{StateDir: t.TempDir()}}
	if err := writeJSON(c.networkPath("p_back"), networkRecord{Name: "p_back", Subnet: "10.89.7.0/24", Gateway: "10.89.7.1"}); err != nil {
		t.Fatal(err)
	}
	spec := engine.ContainerSpec{Network: engine.NetworkConfig{
		Networks:  []engine.NetworkAttachment{{Network: "p_back"}, {Network: "p_front"}},
		DNSSearch: []string{"corp.example"},
	}}
	got := string(c.resolvConf(spec))
	want := "nameserver 10.89.7.1\nsearch corp.example\noptions ndots:0\n"
	if got != want {
		t.Fatalf("resolv.conf = %q, want %q", got, want)
	}
}

func TestResolvConfWithoutANetworkHasNoNameserver(t *testing.T) {
	c := &Client{opts: Options{StateDir: t.TempDir()}}
	got := string(c.resolvConf(engine.ContainerSpec{Network: engine.NetworkConfig{Mode: "none"}}))
	if strings.Contains(got, "nameserver ") {
		t.Fatalf("network_mode none: resolv.conf = %q, want no nameserver", got)
	}
}

func TestSplitExtraHost(t *testing.T) {
	for in, want := range map[string][2]string{
		"db:192.0.2.1":                      {"db", "192.0.2.1"},
		"db=192.0.2.1":                      {"db", "192.0.2.1"},
		"v6:::1":                            {"v6", "::1"},
		"host.docker.internal:host-gateway": {"host.docker.internal", "host-gateway"},
	} {
		name, ip, ok := splitExtraHost(in)
		if !ok || name != want[0] || ip != want[1] {
			t.Errorf("%q → %q %q %v", in, name, ip, ok)
		}
	}
	for _, bad := range []string{"nohost", ":1.2.3.4", "db:"} {
		if _, _, ok := splitExtraHost(bad); ok {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestWriteHostsListsOwnAddressAndExtraHosts(t *testing.T) {
	c := &Client{opts: Options{StateDir: t.TempDir()}}
	id := strings.Repeat("ab", 32)
	if err := os.MkdirAll(c.containerDir(id), 0o700); err != nil {
		t.Fatal(err)
	}
	spec := engine.ContainerSpec{Name: "demo-web-1", Process: engine.Process{Hostname: "web", Domainname: "example.com"},
		Network: engine.NetworkConfig{ExtraHosts: []string{"gw:host-gateway", "db:192.0.2.9"}}}
	atts := []attachment{{Network: "n", IPv4: "10.89.1.5", Gateway: "10.89.1.1"}}
	if err := c.writeHosts(id, spec, atts); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(c.containerDir(id), "hosts"))
	want := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"10.89.1.5\tweb.example.com web demo-web-1\n10.89.1.1\tgw\n192.0.2.9\tdb\n"
	if string(data) != want {
		t.Fatalf("hosts =\n%s\nwant\n%s", data, want)
	}
}
