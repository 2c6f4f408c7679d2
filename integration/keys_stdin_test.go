package integration

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stackdev/stack/engine/ctrd"
)

const stdinKeys = `
services:
  held:
    image: busybox
    network_mode: none
    stdin_open: true
    command: ["sh", "-c", "echo hi; exec cat"]
  shell:
    image: busybox
    network_mode: none
    stdin_open: true
    command: ["sh"]
  kept: # on the default network: the daemon (restart policies) runs for projects with a network
    image: busybox
    stdin_open: true
    restart: always
    command: ["sh", "-c", "echo up; exec cat"]
  closed:
    image: busybox
    network_mode: none
    command: ["sh"]
`

// TestKeyStdinOpen: stdin_open without tty keeps the container's stdin
// open, as `docker run -i` does, through a detached io holder that outlives
// every other stack process, serves restarts, and leaves nothing after down.
func TestKeyStdinOpen(t *testing.T) {
	p := newProjectEnv(t, stdinKeys)
	p.mustRun("up", "-d") // not p.up: plan would start closed again
	held, shell, closed := p.name("held", 1), p.name("shell", 1), p.name("closed", 1)
	time.Sleep(2 * time.Second)

	t.Run("a shell reading stdin keeps running", func(t *testing.T) {
		states := psStates(t, p)
		for _, name := range []string{held, shell, p.name("kept", 1)} {
			if states[name] != "running" {
				t.Errorf("%s is %q after 2s, want running (ps: %v)", name, states[name], states)
			}
		}
		if fd0 := p.sh(held, "readlink /proc/1/fd/0"); !strings.HasPrefix(fd0, "pipe:") {
			t.Errorf("PID 1 stdin is %q, want a pipe", fd0)
		}
	})
	t.Run("without stdin_open it reads EOF and exits", func(t *testing.T) {
		if st := psStates(t, p)[closed]; st != "exited" {
			t.Errorf("%s is %q, want exited", closed, st)
		}
	})
	t.Run("output reaches stack logs", func(t *testing.T) {
		p.waitLogs("hi", "held")
	})
	holder := p.holderPID(held)
	t.Run("the holder is detached and outlives every stack process", func(t *testing.T) {
		if sid := procField(t, holder, 6); sid != strconv.Itoa(holder) {
			t.Errorf("holder %d is in session %s, want a session of its own", holder, sid)
		}
		if status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", holder)); err == nil {
			for _, l := range strings.Split(string(status), "\n") {
				if strings.HasPrefix(l, "VmRSS:") || strings.HasPrefix(l, "RssAnon:") {
					t.Logf("holder %d %s", holder, strings.Join(strings.Fields(l), " "))
				}
			}
		}
		follow := p.startFollow("held")
		if killed := p.killStackProcesses(); killed == 0 {
			t.Fatal("no stack process to kill: the logs -f follower is not running")
		}
		_ = follow.Wait()
		time.Sleep(time.Second)
		if pid, ok := ctrd.HolderRunning(p.containerDir(held)); !ok || pid != holder {
			t.Fatalf("holder %d gone after kill -9 of the stack processes (now %d, %v)", holder, pid, ok)
		}
		if c := p.containerNamed(held); c.Status != "running" {
			t.Fatalf("%s is %s after kill -9 of the stack processes", held, c.Status)
		}
		p.sh(held, "echo after-kill > /proc/1/fd/1")
		p.waitLogs("after-kill", "held")
	})
	t.Run("restart keeps stdin open with the same holder", func(t *testing.T) {
		pid1 := p.containerNamed(held).Pid
		p.mustRun("restart", "-t", "0", "held")
		time.Sleep(time.Second)
		c := p.containerNamed(held)
		if c.Status != "running" || c.Pid == pid1 {
			t.Fatalf("after restart %s is %s with PID %d (was %d), want running anew", held, c.Status, c.Pid, pid1)
		}
		if pid, _ := ctrd.HolderRunning(p.containerDir(held)); pid != holder {
			t.Errorf("holder after restart = %d, want the same %d", pid, holder)
		}
		p.waitHiCount(2)
	})
	t.Run("a restart after the holder died starts a new one", func(t *testing.T) {
		if err := syscall.Kill(holder, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		waitFor(t, func() bool { _, ok := ctrd.HolderRunning(p.containerDir(held)); return !ok })
		p.mustRun("restart", "-t", "0", "held")
		time.Sleep(time.Second)
		if c := p.containerNamed(held); c.Status != "running" {
			t.Fatalf("after restart %s is %s, want running", held, c.Status)
		}
		pid, ok := ctrd.HolderRunning(p.containerDir(held))
		if !ok || pid == holder {
			t.Fatalf("holder after restart = %d (%v), want a new one", pid, ok)
		}
		p.waitHiCount(3)
	})
	t.Run("a restart by the daemon's policy keeps the holder", func(t *testing.T) {
		kept := p.name("kept", 1)
		before, holder := p.containerNamed(kept).Pid, p.holderPID(kept)
		if err := syscall.Kill(before, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		err := eventually(20*time.Second, func() error {
			if c := p.containerNamed(kept); c.Status != "running" || c.Pid == before {
				return fmt.Errorf("%s is %s with PID %d (killed %d)", kept, c.Status, c.Pid, before)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if pid := p.holderPID(kept); pid != holder {
			t.Errorf("holder after the policy's restart = %d, want the same %d", pid, holder)
		}
		p.waitLogs("up\nup\n", "--no-log-prefix", "kept")
	})
	t.Run("down leaves no holder and no fifo", func(t *testing.T) {
		pids := []int{p.holderPID(held), p.holderPID(shell), p.holderPID(p.name("kept", 1))}
		p.mustRun("down", "-t", "0")
		waitFor(t, func() bool { return !alive(pids[0]) && !alive(pids[1]) && !alive(pids[2]) })
		_ = filepath.WalkDir(p.stateDir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && d.Type()&fs.ModeNamedPipe != 0 {
				t.Errorf("fifo left after down: %s", path)
			}
			return nil
		})
	})
}

// psStates maps container names to their state in `stack ps -a --format json`.
func psStates(t *testing.T, p *projectEnv) map[string]string {
	t.Helper()
	states := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(p.mustRun("ps", "-a", "--format", "json")), "\n") {
		var c struct{ Name, State string }
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			t.Fatalf("ps line %q: %v", line, err)
		}
		states[c.Name] = c.State
	}
	return states
}

// containerDir is the state directory of the container called name.
func (p *projectEnv) containerDir(name string) string {
	return filepath.Join(p.stateDir, "containers", p.containerNamed(name).ID)
}

// holderPID is the PID of the running io holder of container name.
func (p *projectEnv) holderPID(name string) int {
	p.t.Helper()
	pid, ok := ctrd.HolderRunning(p.containerDir(name))
	if !ok {
		p.t.Fatalf("no io holder runs for %s", name)
	}
	return pid
}

// waitHiCount waits until held's log has n "hi" lines: one per start.
func (p *projectEnv) waitHiCount(n int) {
	p.t.Helper()
	var out string
	err := eventually(20*time.Second, func() error {
		out = p.mustRun("logs", "--no-log-prefix", "held")
		if got := strings.Count(out, "hi\n"); got != n {
			return fmt.Errorf("%d hi lines in the log, want %d:\n%s", got, n, out)
		}
		return nil
	})
	if err != nil {
		p.t.Fatal(err)
	}
}

// startFollow starts `stack logs -f SERVICE` in the background: a stack
// process that lives until killed.
func (p *projectEnv) startFollow(service string) *exec.Cmd {
	p.t.Helper()
	cmd := exec.Command(env.stackBin, "logs", "-f", service)
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(),
		"STACK_CONTAINERD_ADDRESS="+env.socket,
		"STACK_NAMESPACE="+p.namespace,
		"STACK_STATE_DIR="+p.stateDir,
	)
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	time.Sleep(300 * time.Millisecond)
	return cmd
}

// killStackProcesses sends SIGKILL to every process running the stack binary
// with this test's state directory (CLI commands, the daemon), except io
// holders, and returns how many it killed.
func (p *projectEnv) killStackProcesses() int {
	p.t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		p.t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe != env.stackBin {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		environ, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if strings.Contains(string(cmdline), ctrd.IOHoldCommand) || !strings.Contains(string(environ), "STACK_STATE_DIR="+p.stateDir+"\x00") {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// procField is the n-th field (1-based) of /proc/<pid>/stat.
func procField(t *testing.T, pid, n int) string {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	rest := strings.Fields(s[strings.LastIndexByte(s, ')')+2:]) // after "pid (comm) "
	return rest[n-3]
}

// alive tells whether a process (not a zombie) has pid.
func alive(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(data)
	return !strings.HasPrefix(s[strings.LastIndexByte(s, ')')+2:], "Z")
}
