package integration

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

const securityKeys = `
services:
  plain:
    image: busybox
    command: ` + loop + `
  caps:
    image: busybox
    command: ` + loop + `
    cap_add: [NET_ADMIN]
    cap_drop: [chown]
  nocaps:
    image: busybox
    command: ` + loop + `
    cap_drop: [ALL]
  priv:
    image: busybox
    command: ` + loop + `
    privileged: true
  locked:
    image: busybox
    command: ` + loop + `
    read_only: true
    security_opt: [no-new-privileges:true]
    sysctls:
      net.ipv4.ip_forward: "1"
      net.core.somaxconn: 512
  hostns:
    image: busybox
    command: ` + loop + `
    ipc: host
    pid: host
  joined:
    image: busybox
    command: ` + loop + `
    ipc: service:plain
    pid: service:plain
`

// Capability numbers from linux/capability.h.
const (
	capChown    = 0
	capNetAdmin = 12
	capSysAdmin = 21
)

func capSet(t *testing.T, hex string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(hex, 16, 64)
	if err != nil {
		t.Fatalf("capability mask %q: %v", hex, err)
	}
	return v
}

func hasCap(mask uint64, c int) bool { return mask&(1<<c) != 0 }

// TestKeySecurity reads /proc/<pid>/status and the namespaces of each
// container: cap_add, cap_drop, privileged, read_only, security_opt
// no-new-privileges, sysctls, ipc and pid.
func TestKeySecurity(t *testing.T) {
	p := newProjectEnv(t, securityKeys)
	p.up()
	capEff := func(service string) uint64 { return capSet(t, p.statusField(p.name(service, 1), "CapEff")) }

	t.Run("default capabilities", func(t *testing.T) {
		c := capEff("plain")
		if !hasCap(c, capChown) || hasCap(c, capNetAdmin) || hasCap(c, capSysAdmin) {
			t.Errorf("plain CapEff %x: want CHOWN, not NET_ADMIN or SYS_ADMIN", c)
		}
	})
	t.Run("cap_add and cap_drop", func(t *testing.T) {
		c := capEff("caps")
		if !hasCap(c, capNetAdmin) || hasCap(c, capChown) {
			t.Errorf("caps CapEff %x: want NET_ADMIN added and CHOWN dropped", c)
		}
		if r := p.exec(p.name("caps", 1), "ip", "link", "add", "dummy0", "type", "dummy"); r.code != 0 && !strings.Contains(r.stderr, "not supported") {
			t.Errorf("NET_ADMIN should allow ip link add: exit %d %s", r.code, r.stderr)
		}
		if r := p.exec(p.name("caps", 1), "chown", "1000", "/tmp"); r.code == 0 {
			t.Error("chown succeeded without CAP_CHOWN")
		}
	})
	t.Run("cap_drop ALL", func(t *testing.T) {
		if c := capEff("nocaps"); c != 0 {
			t.Errorf("nocaps CapEff %x, want 0", c)
		}
	})
	t.Run("privileged", func(t *testing.T) {
		c := capEff("priv")
		if !hasCap(c, capSysAdmin) || !hasCap(c, capNetAdmin) {
			t.Errorf("priv CapEff %x lacks SYS_ADMIN or NET_ADMIN", c)
		}
		if got := p.sh(p.name("priv", 1), "test -c /dev/kmsg && echo host-devices; grep -c ' /proc/sys ro' /proc/mounts || true"); got != "host-devices\n0" {
			t.Errorf("privileged: %q, want the host's devices and a writable /proc/sys", got)
		}
	})
	t.Run("read_only", func(t *testing.T) {
		r := p.exec(p.name("locked", 1), "touch", "/newfile")
		if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
			t.Errorf("touch / on a read-only rootfs: exit %d %q", r.code, r.stderr)
		}
		if got := p.sh(p.name("plain", 1), "touch /newfile && echo ok"); got != "ok" {
			t.Errorf("plain rootfs not writable: %q", got)
		}
	})
	t.Run("no-new-privileges", func(t *testing.T) {
		if got := p.statusField(p.name("locked", 1), "NoNewPrivs"); got != "1" {
			t.Errorf("locked NoNewPrivs = %s, want 1", got)
		}
		if got := p.statusField(p.name("plain", 1), "NoNewPrivs"); got != "0" {
			t.Errorf("plain NoNewPrivs = %s, want 0", got)
		}
	})
	t.Run("sysctls", func(t *testing.T) {
		got := p.sh(p.name("locked", 1), "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/core/somaxconn")
		if got != "1\n512" {
			t.Errorf("sysctls = %q, want 1 and 512", got)
		}
	})
	ns := func(pid int, kind string) string { return mustReadlink(t, "/proc/"+itoa(pid)+"/ns/"+kind) }
	self := os.Getpid()
	t.Run("ipc and pid host", func(t *testing.T) {
		pid := p.containerNamed(p.name("hostns", 1)).Pid
		for _, kind := range []string{"ipc", "pid"} {
			if ns(pid, kind) != ns(self, kind) {
				t.Errorf("%s namespace %s, want the host's %s", kind, ns(pid, kind), ns(self, kind))
			}
		}
		if ns(p.containerNamed(p.name("plain", 1)).Pid, "pid") == ns(self, "pid") {
			t.Error("plain shares the host's pid namespace")
		}
	})
	t.Run("ipc and pid service", func(t *testing.T) {
		plain, joined := p.containerNamed(p.name("plain", 1)).Pid, p.containerNamed(p.name("joined", 1)).Pid
		for _, kind := range []string{"ipc", "pid"} {
			if ns(joined, kind) != ns(plain, kind) {
				t.Errorf("joined %s namespace %s, want plain's %s", kind, ns(joined, kind), ns(plain, kind))
			}
		}
		if ns(joined, "net") == ns(plain, "net") {
			t.Error("joined shares plain's network namespace too")
		}
	})
}
