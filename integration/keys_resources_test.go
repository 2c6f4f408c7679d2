package integration

import (
	"regexp"
	"strings"
	"testing"
)

const resourceKeys = `
services:
  limits:
    image: busybox
    command: ` + loop + `
    mem_limit: 64m
    mem_reservation: 32m
    memswap_limit: 128m
    cpus: 0.5
    cpu_shares: 512
    cpuset: "0"
    pids_limit: 50
    shm_size: 16m
    ulimits:
      nofile:
        soft: 1024
        hard: 2048
      nproc: 300
    devices:
      - /dev/null:/dev/mynull:rwm
      - source: /dev/loop-control
        target: /dev/myloop
        permissions: r
  deployed:
    image: busybox
    command: ` + loop + `
    deploy:
      resources:
        limits:
          cpus: "0.25"
          memory: 48m
          pids: 40
        reservations:
          cpus: "0.5"
          memory: 16m
`

// TestKeyResources reads the cgroup v1 files of each container and its
// /proc limits: mem_limit, mem_reservation, memswap_limit, cpus,
// cpu_shares, cpuset, pids_limit, deploy.resources limits and
// reservations, shm_size, ulimits and devices.
func TestKeyResources(t *testing.T) {
	p := newProjectEnv(t, resourceKeys)
	p.up()
	limits, deployed := p.name("limits", 1), p.name("deployed", 1)

	for _, tc := range []struct {
		key, container, controller, file, want string
	}{
		{"mem_limit", limits, "memory", "memory.limit_in_bytes", "67108864"},
		{"mem_reservation", limits, "memory", "memory.soft_limit_in_bytes", "33554432"},
		{"memswap_limit", limits, "memory", "memory.memsw.limit_in_bytes", "134217728"},
		{"cpus", limits, "cpu", "cpu.cfs_quota_us", "50000"},
		{"cpus period", limits, "cpu", "cpu.cfs_period_us", "100000"},
		{"cpu_shares", limits, "cpu", "cpu.shares", "512"},
		{"cpuset", limits, "cpuset", "cpuset.cpus", "0"},
		{"pids_limit", limits, "pids", "pids.max", "50"},
		{"deploy limits.memory", deployed, "memory", "memory.limit_in_bytes", "50331648"},
		{"deploy limits.cpus", deployed, "cpu", "cpu.cfs_quota_us", "25000"},
		{"deploy limits.pids", deployed, "pids", "pids.max", "40"},
		{"deploy reservations.memory", deployed, "memory", "memory.soft_limit_in_bytes", "16777216"},
		{"deploy reservations.cpus", deployed, "cpu", "cpu.shares", "512"},
	} {
		t.Run(tc.key, func(t *testing.T) {
			if got := p.cgroupFile(tc.container, tc.controller, tc.file); got != tc.want {
				t.Errorf("%s/%s = %s, want %s", tc.controller, tc.file, got, tc.want)
			}
		})
	}
	t.Run("pids_limit enforced", func(t *testing.T) {
		r := p.exec(limits, "sh", "-c", "for i in $(seq 1 80); do sleep 1 & done; wait")
		if !strings.Contains(r.stderr, "can't fork") {
			t.Errorf("80 background sleeps under pids_limit 50: exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("shm_size", func(t *testing.T) {
		if got := p.sh(limits, "df -k /dev/shm | tail -1"); strings.Fields(got)[1] != "16384" {
			t.Errorf("/dev/shm: %q, want 16384 KiB", got)
		}
	})
	t.Run("ulimits", func(t *testing.T) {
		procLimits := p.proc(limits, "limits")
		for _, re := range []string{`Max open files\s+1024\s+2048\s`, `Max processes\s+300\s+300\s`} {
			if !regexp.MustCompile(re).MatchString(procLimits) {
				t.Errorf("/proc/<pid>/limits does not match %q:\n%s", re, procLimits)
			}
		}
	})
	t.Run("devices", func(t *testing.T) {
		if got := p.sh(limits, "stat -c '%F %t:%T' /dev/mynull && echo x > /dev/mynull && echo written"); got != "character special file 1:3\nwritten" {
			t.Errorf("/dev/mynull: %q, want the host's /dev/null (1:3) writable", got)
		}
		if allow := p.cgroupFile(limits, "devices", "devices.list"); !strings.Contains(allow, "c 1:3 rwm") || !strings.Contains(allow, "c 10:237 r\n") {
			t.Errorf("devices.list lacks c 1:3 rwm and c 10:237 r:\n%s", allow)
		}
		if r := p.exec(limits, "sh", "-c", ": < /dev/myloop"); r.code != 0 {
			t.Errorf("opening /dev/myloop for reading: %s", r.stderr)
		}
		if r := p.exec(limits, "sh", "-c", ": > /dev/myloop"); r.code == 0 || !strings.Contains(r.stderr, "Operation not permitted") {
			t.Errorf("opening /dev/myloop (permissions r) for writing: exit %d %q", r.code, r.stderr)
		}
	})
}
