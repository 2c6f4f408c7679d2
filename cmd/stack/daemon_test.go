package main

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stackdev/stack/compose"
	"github.com/stackdev/stack/daemon"
	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
	"github.com/stackdev/stack/netdns"
)

func TestParseUpstreams(t *testing.T) {
	got, err := parseUpstreams(" 127.0.0.1:5353, 192.0.2.1,[2001:db8::1]:53,2001:db8::2 ,")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.AddrPort{
		netip.MustParseAddrPort("127.0.0.1:5353"), netip.MustParseAddrPort("192.0.2.1:53"),
		netip.MustParseAddrPort("[2001:db8::1]:53"), netip.MustParseAddrPort("[2001:db8::2]:53"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := parseUpstreams("dns.example"); err == nil || !strings.Contains(err.Error(), "STACK_DNS_UPSTREAMS") {
		t.Errorf("a host name must be rejected naming the variable: %v", err)
	}
}

func TestDaemonSocketIsTheDefaultOnlyForTheDefaultInstallation(t *testing.T) {
	t.Setenv("STACK_DAEMON_SOCKET", "")
	a := &app{opts: globalOptions{address: ctrd.DefaultAddress, namespace: ctrd.DefaultNamespace, stateDir: ctrd.DefaultStateDir}}
	if got := a.daemonSocket(""); got != daemon.DefaultSocket {
		t.Errorf("default installation: %s, want %s", got, daemon.DefaultSocket)
	}
	other := &app{opts: globalOptions{address: ctrd.DefaultAddress, namespace: "it-x", stateDir: "/tmp/x"}}
	s1, s2 := other.daemonSocket(""), (&app{opts: globalOptions{address: ctrd.DefaultAddress, namespace: "it-y", stateDir: "/tmp/x"}}).daemonSocket("")
	if s1 == daemon.DefaultSocket || s1 == s2 || !strings.HasPrefix(s1, "/run/stack/stack-") || len(s1) > 100 {
		t.Errorf("other installations must get their own short socket: %s, %s", s1, s2)
	}
	if got := other.daemonSocket("/tmp/flag.sock"); got != "/tmp/flag.sock" {
		t.Errorf("the flag wins: %s", got)
	}
	t.Setenv("STACK_DAEMON_SOCKET", "/tmp/env.sock")
	if got := other.daemonSocket(""); got != "/tmp/env.sock" {
		t.Errorf("the environment wins over the default: %s", got)
	}
}

func TestDaemonStatusTextGroupsNamesByAddress(t *testing.T) {
	st := daemon.Status{
		Info: daemon.Info{Namespace: "stack", StateDir: "/var/lib/stack", Socket: "/run/stack/stack.sock"},
		PID:  42, Since: time.Unix(0, 0),
		Upstreams: []daemon.UpstreamStatus{{Addr: "192.0.2.53:53"}, {Addr: "192.0.2.54:53", Down: true}}, UpstreamsFrom: "/etc/resolv.conf",
		DNS:     netdns.Stats{Queries: 3, Local: 2, Forwarded: 1},
		Refresh: daemon.RefreshStats{Count: 2, LastDuration: 5 * time.Millisecond, LastEventLatency: 12 * time.Millisecond, MaxEventLatency: 30 * time.Millisecond},
		Networks: []daemon.NetworkStatus{
			{Name: "demo_default", Subnet: "10.89.0.0/24", Gateway: "10.89.0.1", Listen: "10.89.0.1:53", Names: []daemon.Name{
				{Name: "demo-web-1", Addresses: []string{"10.89.0.2"}},
				{Name: "demo-web-1.demo_default", Addresses: []string{"10.89.0.2"}},
				{Name: "web", Addresses: []string{"10.89.0.2", "10.89.0.3"}},
			}},
			{Name: "demo_back", Subnet: "10.89.1.0/24", Gateway: "10.89.1.1", Error: "address already in use", Internal: true},
		},
		Restarts: []daemon.RestartStatus{
			{Container: "demo-crash-1", Policy: "on-failure", Count: 3, Last: "gave up after 3 restarts"},
			{Container: "demo-web-1", Policy: "always", Count: 1, Last: "always: exited 137", Next: time.Unix(65, 200e6)},
		},
	}
	var b strings.Builder
	if err := renderDaemonStatus(&b, st, time.Unix(65, 0)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"daemon     pid 42, up 1m5s, socket /run/stack/stack.sock",
		"upstreams  192.0.2.53:53, 192.0.2.54:53 (down) (from /etc/resolv.conf)",
		"event to answer 12.0ms (max 30.0ms)",
		"network demo_default  10.89.0.0/24  listening on 10.89.0.1:53 (udp, tcp)",
		"  10.89.0.2            demo-web-1\n",
		"  10.89.0.2 10.89.0.3  web\n",
		"network demo_back  10.89.1.0/24  NOT listening: address already in use, internal (no forwarding)\n  (no running container)",
		"restarts\n  demo-crash-1  on-failure  3 restarts  gave up after 3 restarts\n",
		"  demo-web-1    always      1 restarts  always: exited 137, next in 200ms\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status text lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "demo-web-1.demo_default") {
		t.Errorf("the <name>.<network> forms are said once, in the header:\n%s", out)
	}
}

func TestDaemonNotesWhileItStartsBesideAnApplyComeAfterTheProgress(t *testing.T) {
	var stderr strings.Builder
	a := &app{stderr: &stderr}
	a.notes.start()
	a.daemonNote("info", "stack daemon was not running: started it")
	a.daemonNote("warning", "service names will not resolve: boom")
	if stderr.Len() != 0 {
		t.Fatalf("notes printed while held (they would break the progress lines): %q", stderr.String())
	}
	fmt.Fprintln(&stderr, " Container demo-web-1  Started")
	for _, n := range a.notes.stop() {
		a.daemonNote(n.level, n.msg)
	}
	want := " Container demo-web-1  Started\nstack daemon was not running: started it\nWARN service names will not resolve: boom\n"
	if stderr.String() != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr.String(), want)
	}
	a.daemonNote("info", "after")
	if !strings.HasSuffix(stderr.String(), "after\n") {
		t.Errorf("a note after the hold ended is not printed at once: %q", stderr.String())
	}
}

func TestTheDaemonIsWantedForNetworksOrRestartPolicies(t *testing.T) {
	withNet := compose.Desired{Networks: []engine.NetworkSpec{{Name: "demo_default"}}}
	always := compose.Desired{Containers: []engine.ContainerSpec{{Restart: engine.RestartPolicy{Name: "always"}}}}
	plain := compose.Desired{Containers: []engine.ContainerSpec{{Restart: engine.RestartPolicy{Name: "no"}}}}
	for _, tc := range []struct {
		name    string
		desired compose.Desired
		off     bool
		want    bool
	}{
		{"a network", withNet, false, true},
		{"a restart policy", always, false, true},
		{"neither", plain, false, false},
		{"a network, STACK_DAEMON=off", withNet, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.off {
				t.Setenv("STACK_DAEMON", "off")
			}
			if got := daemonWanted(tc.desired); got != tc.want {
				t.Errorf("daemonWanted = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestDaemonAnswersOnlyWhenSomethingListens(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "d.sock")
	if daemonAnswers(sock) {
		t.Fatal("answers on a socket nobody listens on")
	}
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !daemonAnswers(sock) {
		t.Error("does not answer while a listener is there")
	}
}
