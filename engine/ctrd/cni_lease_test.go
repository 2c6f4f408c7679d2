package ctrd

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rangeOf is the lease range of a conflist range written as JSON.
func rangeOf(js string) (leaseRange, bool) {
	var r conflistRange
	if decodeStrict([]byte(js), &r) != nil {
		return leaseRange{}, false
	}
	return parseLeaseRange(r)
}

func mustRangeOf(t *testing.T, js string) leaseRange {
	t.Helper()
	rng, ok := rangeOf(js)
	if !ok {
		t.Fatalf("range %s refused", js)
	}
	return rng
}

func TestARangeHasHostLocalsDefaults(t *testing.T) {
	rng := mustRangeOf(t, `{"subnet": "10.1.2.0/24"}`)
	if rng.gateway.String() != "10.1.2.1" || rng.start.String() != "10.1.2.1" || rng.end.String() != "10.1.2.254" {
		t.Errorf("defaults: gateway %s, range %s; want 10.1.2.1 and 10.1.2.1-10.1.2.254", rng.gateway, rng)
	}
	rng = mustRangeOf(t, `{"subnet": "10.1.2.0/24", "gateway": "10.1.2.254", "rangeStart": "10.1.2.128", "rangeEnd": "10.1.2.255"}`)
	if rng.gateway.String() != "10.1.2.254" || rng.String() != "10.1.2.128-10.1.2.255" {
		t.Errorf("given: gateway %s, range %s", rng.gateway, rng)
	}
	for _, bad := range []string{`{"subnet": "fd00::/64"}`, `{"subnet": "10.1.2.0/24", "gateway": "10.9.9.9"}`, `{"subnet": "10.1.2.0/24", "mtu": 1400}`} {
		if _, ok := rangeOf(bad); ok {
			t.Errorf("range %s accepted; the plugins must handle it", bad)
		}
	}
}

// Addresses are given round-robin after the last one given, skipping the
// gateway and the taken ones, wrapping round the range, as host-local
// gives them; a requested one is given only if free.
func TestLeasesAreGivenAsHostLocalGivesThem(t *testing.T) {
	dir := t.TempDir()
	rng := mustRangeOf(t, `{"subnet": "10.1.2.0/29"}`) // .1 gateway, .2–.6
	give := func(id string, want string) {
		t.Helper()
		got, err := reserveLease(dir, id, "eth0", rng, netip.Addr{})
		if err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		if got.String() != want {
			t.Errorf("%s got %s, want %s", id, got, want)
		}
		if content, _ := os.ReadFile(filepath.Join(dir, want)); string(content) != id+"\r\neth0" {
			t.Errorf("lease %s holds %q, want %q as host-local writes it", want, content, id+"\r\neth0")
		}
	}
	give("a", "10.1.2.2")
	give("b", "10.1.2.3")
	if err := releaseLeases(dir, "a", "eth0"); err != nil {
		t.Fatal(err)
	}
	give("c", "10.1.2.4") // after the last given, not the first free
	if _, err := reserveLease(dir, "c", "eth0", rng, netip.Addr{}); err == nil || !strings.Contains(err.Error(), "duplicate allocation") {
		t.Errorf("a second lease for c's eth0: %v, want host-local's duplicate allocation error", err)
	}
	give("d", "10.1.2.5")
	give("e", "10.1.2.6")
	give("f", "10.1.2.2") // round the range, past the gateway, to the freed one
	if _, err := reserveLease(dir, "g", "eth0", rng, netip.Addr{}); err == nil || !strings.Contains(err.Error(), "no IP addresses available") {
		t.Errorf("a full range: %v, want host-local's error", err)
	}
	if err := releaseLeases(dir, "d", "eth0"); err != nil {
		t.Fatal(err)
	}
	if got, err := reserveLease(dir, "g", "eth0", rng, netip.MustParseAddr("10.1.2.5")); err != nil || got.String() != "10.1.2.5" {
		t.Errorf("requesting the freed 10.1.2.5: %s, %v", got, err)
	}
	for _, taken := range []string{"10.1.2.3", "10.1.2.1", "10.1.3.9"} {
		if _, err := reserveLease(dir, "h", "eth0", rng, netip.MustParseAddr(taken)); err == nil {
			t.Errorf("requesting %s (taken, the gateway, or outside the range) succeeded", taken)
		}
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
