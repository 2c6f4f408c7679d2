package ctrd

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/stackdev/stack/engine"
)

func TestChooseSubnetSkipsUsedPrefixes(t *testing.T) {
	c := &Client{}
	others := []networkRecord{{Name: "a_default", Subnet: "10.89.1.0/24"}, {Name: "b_default", Subnet: "10.89.2.0/24"}}
	p, err := c.chooseSubnet(engine.NetworkSpec{Name: "c_default"}, others)
	if err != nil {
		t.Fatal(err)
	}
	if p.Overlaps(netip.MustParsePrefix("10.89.1.0/24")) || p.Overlaps(netip.MustParsePrefix("10.89.2.0/24")) || !subnetPool.Overlaps(p) || p.Bits() != 24 {
		t.Fatalf("chose %s", p)
	}
}

func TestChooseSubnetOverlapNamesBothNetworks(t *testing.T) {
	c := &Client{}
	others := []networkRecord{{Name: "a_default", Subnet: "172.30.0.0/16"}}
	_, err := c.chooseSubnet(engine.NetworkSpec{Name: "b_default", Subnet: "172.30.5.0/24"}, others)
	if err == nil || !strings.Contains(err.Error(), "b_default") || !strings.Contains(err.Error(), "a_default") {
		t.Fatalf("err = %v", err)
	}
	if _, err := c.chooseSubnet(engine.NetworkSpec{Name: "x", Subnet: "not-a-cidr"}, nil); err == nil {
		t.Fatal("an invalid subnet was accepted")
	}
}

func TestRoutePrefixesParsesTheHostTable(t *testing.T) {
	for _, u := range routePrefixes() {
		if u.prefix.Bits() == 0 || !u.prefix.IsValid() || !strings.HasPrefix(u.owner, "host route on ") {
			t.Errorf("bad route prefix %+v", u)
		}
	}
}

func TestBridgeNameFitsLinux(t *testing.T) {
	c := &Client{opts: Options{StateDir: "/var/lib/stack"}}
	a, b := c.bridgeName("demo_default"), c.bridgeName("demo_back")
	if len(a) > 15 || a == b || !strings.HasPrefix(a, "stk") {
		t.Fatalf("bridge names %q %q", a, b)
	}
	other := &Client{opts: Options{StateDir: "/tmp/other"}}
	if other.bridgeName("demo_default") == a {
		t.Fatal("two state directories share a bridge name")
	}
}

func TestRangeBoundsOfAnIPRangeLeaveOutTheNetworkAndBroadcastAddresses(t *testing.T) {
	for _, tc := range []struct {
		cidr, subnet string
		want         [2]string
	}{
		{"10.89.3.128/25", "10.89.3.0/24", [2]string{"10.89.3.128", "10.89.3.254"}},
		{"10.89.3.0/25", "10.89.3.0/24", [2]string{"10.89.3.1", "10.89.3.127"}},
		{"10.0.0.0/8", "10.0.0.0/8", [2]string{"10.0.0.1", "10.255.255.254"}},
		{"10.89.3.7/32", "10.89.3.0/24", [2]string{"10.89.3.7", "10.89.3.7"}},
	} {
		rng := map[string]any{}
		if err := addRangeBounds(rng, tc.cidr, tc.subnet); err != nil {
			t.Fatal(err)
		}
		if rng["rangeStart"] != tc.want[0] || rng["rangeEnd"] != tc.want[1] {
			t.Errorf("%s in %s → %v – %v, want %v", tc.cidr, tc.subnet, rng["rangeStart"], rng["rangeEnd"], tc.want)
		}
	}
	if err := addRangeBounds(map[string]any{}, "10.89.3.255/32", "10.89.3.0/24"); err == nil {
		t.Error("an ip_range of the broadcast address alone was accepted")
	}
}

func TestAnIPv4AddressOfItsOwnMayLieOutsideTheIPRange(t *testing.T) {
	c := &Client{opts: Options{StateDir: t.TempDir()}}
	rec, err := c.planNetwork(engine.NetworkSpec{Name: "demo_default", Subnet: "10.89.3.0/24", IPRange: "10.89.3.128/25"})
	if err != nil {
		t.Fatal(err)
	}
	rangeOf := func(o attachOpts) leaseRange {
		t.Helper()
		conf, err := rec.conflist(c, o)
		if err != nil {
			t.Fatal(err)
		}
		b, ok := parseBridgeOnly(conf)
		if !ok {
			t.Fatalf("conflist not handled in process: %s", conf)
		}
		return b.rng
	}
	if got := rangeOf(attachOpts{primary: true}).String(); got != "10.89.3.128-10.89.3.254" {
		t.Errorf("addresses given out from %s, want the ip_range 10.89.3.128-10.89.3.254", got)
	}
	if got := rangeOf(attachOpts{primary: true, ipv4: "10.89.3.5"}); !got.contains(netip.MustParseAddr("10.89.3.5")) {
		t.Errorf("an ipv4_address 10.89.3.5 outside the ip_range is refused (range %s)", got)
	}
}
