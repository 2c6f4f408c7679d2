package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	healthServices = 30
	healthWindow   = 20 * time.Second
	// clockTicks is USER_HZ, the unit of /proc/<pid>/stat and /proc/stat
	// times: 100 on every Linux architecture Go supports.
	clockTicks = 100
)

// benchHealthCPU measures the CPU time spent over healthWindow with 30
// idle services, then with the same services healthchecked every second
// (`CMD true`), and reports the difference: in the stack daemon (which runs
// the probes through containerd exec), in the services' shims (their own
// time plus their reaped children's: runc exec and the probes), in
// containerd, and on the whole host (/proc/stat, noisy on a shared host).
func benchHealthCPU(ctx context.Context, r *stackRunner) ([]lifeRow, error) {
	defer r.down(ctx)
	idle, err := healthWindowCPU(ctx, r, false)
	if err != nil {
		return nil, err
	}
	checked, err := healthWindowCPU(ctx, r, true)
	if err != nil {
		return nil, err
	}
	pct := func(f func(cpuTimes) int64) (with, without, delta float64) {
		with, without = checked.percent(f(checked)), idle.percent(f(idle))
		return with, without, with - without
	}
	row := func(figure string, f func(cpuTimes) int64, target float64) lifeRow {
		with, without, delta := pct(f)
		lr := lifeRow{figure: figure, value: fmt.Sprintf("%.1f%% of a core", delta),
			detail: fmt.Sprintf("%.1f%% with checks, %.1f%% without, over %s", with, without, healthWindow)}
		if target > 0 {
			lr.target, lr.met = fmt.Sprintf("<%.0f%%", target), delta < target
		} else {
			lr.noTarget = true
		}
		return lr
	}
	what := fmt.Sprintf("%d services, 1s interval", healthServices)
	return []lifeRow{
		row("healthcheck CPU, stack daemon ("+what+")", func(c cpuTimes) int64 { return c.daemon }, 5),
		row("healthcheck CPU, shims + runc exec + probes", func(c cpuTimes) int64 { return c.shims }, 0),
		row("healthcheck CPU, containerd", func(c cpuTimes) int64 { return c.containerd }, 0),
		row("healthcheck CPU, whole host (/proc/stat)", func(c cpuTimes) int64 { return c.host }, 0),
	}, nil
}

// healthWindowCPU brings the services up (recreating them when the
// healthcheck changes), lets them settle, and measures one window.
func healthWindowCPU(ctx context.Context, r *stackRunner, checks bool) (cpuTimes, error) {
	if err := r.writeLifeProject(healthProject(checks)); err != nil {
		return cpuTimes{}, err
	}
	args := []string{"up", "-d", "--remove-orphans"}
	if checks {
		args = append(args, "--wait", "--wait-timeout", "90")
	}
	if _, _, err := r.output(ctx, args...); err != nil {
		return cpuTimes{}, err
	}
	time.Sleep(2 * time.Second)
	pids, err := benchPids(ctx, r)
	if err != nil {
		return cpuTimes{}, err
	}
	start, err := pids.sample()
	if err != nil {
		return cpuTimes{}, err
	}
	select {
	case <-time.After(healthWindow):
	case <-ctx.Done():
		return cpuTimes{}, ctx.Err()
	}
	end, err := pids.sample()
	if err != nil {
		return cpuTimes{}, err
	}
	return end.since(start), nil
}

func healthProject(checks bool) string {
	var b strings.Builder
	for i := range healthServices {
		fmt.Fprintf(&b, "  h%d:\n    image: busybox\n    command: [sleep, \"3600\"]\n    stop_signal: SIGKILL\n", i)
		if checks {
			b.WriteString("    healthcheck:\n      test: [CMD, \"true\"]\n      interval: 1s\n      timeout: 5s\n      retries: 3\n")
		}
	}
	return b.String()
}

// processes are the ones whose CPU is counted.
type processes struct {
	daemon, containerd int
	shims              []int
}

// benchPids finds the stack daemon (from `stack daemon status`), the
// containerd serving the bench's socket, and the shims of the bench's
// namespace.
func benchPids(ctx context.Context, r *stackRunner) (processes, error) {
	out, _, err := r.output(ctx, "daemon", "status", "--format", "json")
	if err != nil {
		return processes{}, err
	}
	var st struct {
		PID int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || st.PID == 0 {
		return processes{}, fmt.Errorf("daemon status: no pid in %q (%v)", out, err)
	}
	p := processes{daemon: st.PID}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return p, err
	}
	ctdDir := filepath.Dir(r.cfg.address)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || len(b) == 0 {
			continue
		}
		argv := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		switch filepath.Base(argv[0]) {
		case "containerd-shim-runc-v2":
			if hasArgs(argv, "-namespace", lifeNamespace) && hasArgs(argv, "-address", r.cfg.address) {
				p.shims = append(p.shims, pid)
			}
		case "containerd":
			if hasArgs(argv, "--config", filepath.Join(ctdDir, "config.toml")) {
				p.containerd = pid
			}
		}
	}
	if len(p.shims) != healthServices {
		return p, fmt.Errorf("found %d shims in namespace %s, want %d", len(p.shims), lifeNamespace, healthServices)
	}
	return p, nil
}

func hasArgs(argv []string, flag, value string) bool {
	for i := 0; i+1 < len(argv); i++ {
		if argv[i] == flag && argv[i+1] == value {
			return true
		}
	}
	return false
}

// cpuTimes are clock ticks, over a window of wall time.
type cpuTimes struct {
	wall                            time.Duration
	daemon, shims, containerd, host int64
}

func (c cpuTimes) percent(ticks int64) float64 {
	return 100 * float64(ticks) / clockTicks / c.wall.Seconds()
}

func (c cpuTimes) since(start cpuTimes) cpuTimes {
	return cpuTimes{wall: c.wall - start.wall, daemon: c.daemon - start.daemon, shims: c.shims - start.shims,
		containerd: c.containerd - start.containerd, host: c.host - start.host}
}

var benchEpoch = time.Now()

// sample reads the processes' CPU times (a shim's include its reaped
// children's) and the host's busy time. containerd is 0 when it was not
// found (not started by integration/containerd.sh).
func (p processes) sample() (cpuTimes, error) {
	c := cpuTimes{wall: time.Since(benchEpoch)}
	var err error
	if c.daemon, err = procTicks(p.daemon, false); err != nil {
		return c, fmt.Errorf("stack daemon: %w", err)
	}
	for _, pid := range p.shims {
		t, err := procTicks(pid, true)
		if err != nil {
			return c, fmt.Errorf("shim: %w", err)
		}
		c.shims += t
	}
	if p.containerd != 0 {
		if c.containerd, err = procTicks(p.containerd, false); err != nil {
			return c, fmt.Errorf("containerd: %w", err)
		}
	}
	c.host, err = hostBusyTicks()
	return c, err
}

// procTicks is utime+stime of pid, plus cutime+cstime with children.
func procTicks(pid int, children bool) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces: count from its ')'.
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	fields := f[11:13] // utime, stime (fields 14, 15)
	if children {
		fields = f[11:15] // and cutime, cstime
	}
	var sum int64
	for _, s := range fields {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		sum += v
	}
	return sum, nil
}

// hostBusyTicks is every CPU's time not idle or waiting for I/O.
func hostBusyTicks() (int64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, fmt.Errorf("/proc/stat: %q", line)
	}
	var busy int64
	for i, s := range f[1:] {
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/stat: %w", err)
		}
		// user nice system idle iowait irq softirq steal guest guest_nice;
		// guest time is already in user.
		if i != 3 && i != 4 && i < 8 {
			busy += v
		}
	}
	return busy, nil
}
