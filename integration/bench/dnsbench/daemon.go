package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// daemonFigures are what a real `stack daemon` reports with n containers up.
type daemonFigures struct {
	containers int
	names      int // names its DNS serves on the project's network
	rssKB      int // VmRSS of the daemon process as it serves the names
	anonKB     int // of which RssAnon (heap, stacks)
	fileKB     int // and RssFile (its binary's pages, libc)
	// The same settleFor later: the start-up is over, a resync has run.
	steadyKB, steadyAnonKB, steadyFileKB int
	lastEvent                            time.Duration // its own task event -> answers latency, last and max
	maxEvent                             time.Duration
	// newAnswer is from `up -d` of one more service returning to the first
	// answer with its name at the network's gateway; 0 when not measured.
	newAnswer time.Duration
	// after is VmRSS each second for watchFor after that `up -d`: a
	// daemon that was serving when a bulk change came, through resyncs.
	after []int
}

type daemonStatus struct {
	PID      int `json:"pid"`
	Networks []struct {
		Name   string            `json:"name"`
		Listen string            `json:"listen"`
		Names  []json.RawMessage `json:"names"`
	} `json:"networks"`
	Refresh struct {
		LastEventLatency time.Duration `json:"lastEventLatency"`
		MaxEventLatency  time.Duration `json:"maxEventLatency"`
	} `json:"refresh"`
}

// measureDaemon brings up n busybox services with the stack binary on the
// given containerd (its own namespace and state directory), reads the
// daemon's VmRSS and event-to-answer latency from `stack daemon status`,
// and takes everything down again, the daemon included.
func measureDaemon(ctx context.Context, cfg config, n int) (daemonFigures, error) {
	f := daemonFigures{containers: n}
	dir, err := os.MkdirTemp("", "dnsbench-daemon.")
	if err != nil {
		return f, err
	}
	defer os.RemoveAll(dir)
	env := append(os.Environ(), "STACK_CONTAINERD_ADDRESS="+cfg.address, "STACK_NAMESPACE=bench-dns",
		"STACK_STATE_DIR="+filepath.Join(dir, "state"), "COMPOSE_PROGRESS=quiet",
		"STACK_DNS_UPSTREAMS="+upstreamAddr.String()) // never the host's resolver
	stack := func(limit time.Duration, args ...string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		cmd := exec.CommandContext(ctx, cfg.stack, args...)
		cmd.Dir, cmd.Env = dir, env
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("stack %s: %w: %s%s", strings.Join(args, " "), err, out.String(), errb.String())
		}
		return out.Bytes(), nil
	}
	if _, err := stack(time.Minute, "image", "load", "-i", filepath.Join(cfg.images, "busybox.oci.tar")); err != nil {
		return f, err
	}
	pid := 0
	defer func() {
		_, _ = stack(3*time.Minute, "down", "-v", "-t", "0")
		stopDaemon(pid)
	}()
	if err := writeDaemonProject(dir, n); err != nil {
		return f, err
	}
	if _, err := stack(5*time.Minute, "up", "-d"); err != nil {
		return f, err
	}
	status := func(want int) (daemonStatus, int, error) {
		var st daemonStatus
		names := 0
		// Bounded: 50 tries, 100 ms apart, until the daemon serves want names.
		for range 50 {
			out, err := stack(10*time.Second, "daemon", "status", "--format", "json")
			if err != nil {
				return st, 0, err
			}
			if err := json.Unmarshal(out, &st); err != nil {
				return st, 0, fmt.Errorf("stack daemon status: %w", err)
			}
			pid = st.PID
			names = 0
			for _, nw := range st.Networks {
				if strings.HasPrefix(nw.Name, "dnsbench") {
					names += len(nw.Names)
				}
			}
			if names >= want {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		return st, names, nil
	}
	st, names, err := status(n)
	if err != nil {
		return f, err
	}
	f.names = names
	f.rssKB, f.anonKB, f.fileKB = rssSplit(st.PID)
	select {
	case <-ctx.Done():
		return f, ctx.Err()
	case <-time.After(settleFor):
	}
	f.steadyKB, f.steadyAnonKB, f.steadyFileKB = rssSplit(st.PID)
	// One more service: how soon the daemon answers its name.
	if err := writeDaemonProject(dir, n+1); err != nil {
		return f, err
	}
	if _, err := stack(time.Minute, "up", "-d"); err != nil {
		return f, err
	}
	upDone := time.Now()
	if gw, ok := gateway(st); ok {
		name := fmt.Sprintf("s%d", n)
		for time.Since(upDone) < 2*time.Second && ctx.Err() == nil {
			resp, err := askFrom(gw, name, 100*time.Millisecond)
			if err == nil && len(resp.Answer) > 0 {
				f.newAnswer = time.Since(upDone)
				break
			}
		}
	}
	st, _, err = status(names + 1)
	if err != nil {
		return f, err
	}
	f.lastEvent, f.maxEvent = st.Refresh.LastEventLatency, st.Refresh.MaxEventLatency
	for range int(watchFor / time.Second) {
		select {
		case <-ctx.Done():
			return f, ctx.Err()
		case <-time.After(time.Second):
		}
		if kb := vmRSS(st.PID); kb > 0 {
			f.after = append(f.after, kb)
		}
	}
	return f, nil
}

// watchFor is how long the daemon's memory is sampled after the last `up`:
// three resyncs.
const watchFor = 30 * time.Second

// settleFor is how long after its start-up the daemon's memory is read
// again: longer than its resync (10 s), so the figure is what it keeps.
const settleFor = 15 * time.Second

// rssSplit is a process's VmRSS, RssAnon and RssFile.
func rssSplit(pid int) (rss, anon, file int) {
	return vmRSS(pid), procStatusKB(pid, "RssAnon"), procStatusKB(pid, "RssFile")
}

// gateway is the address the daemon serves the bench project's network on.
func gateway(st daemonStatus) (netip.AddrPort, bool) {
	for _, nw := range st.Networks {
		if strings.HasPrefix(nw.Name, "dnsbench") {
			ap, err := netip.ParseAddrPort(nw.Listen)
			return ap, err == nil
		}
	}
	return netip.AddrPort{}, false
}

func writeDaemonProject(dir string, n int) error {
	var b strings.Builder
	b.WriteString("name: dnsbench\nservices:\n")
	for i := range n {
		fmt.Fprintf(&b, "  s%d:\n    image: busybox\n    command: [sleep, \"3600\"]\n    stop_signal: SIGKILL\n", i)
	}
	return os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(b.String()), 0o644)
}

// stopDaemon ends the daemon the bench started, and only it.
func stopDaemon(pid int) {
	if pid <= 1 {
		return
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte("daemon")) {
		return
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for range 50 {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
}
