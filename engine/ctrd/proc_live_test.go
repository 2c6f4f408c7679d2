package ctrd

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	testBoot = "3ac735ab-53bf-43e1-9d2e-4d2783d1af73"
	testID   = "16615a57e628d66db62809d2608ecf59fe61f8c823a8298ff8375b1dae7d3335"
)

// fakeHost is a /proc and a /sys/fs/cgroup laid out as the kernel lays
// them out, with one process in container testID's cgroup.
type fakeHost struct {
	hostProc
	t *testing.T
}

func newFakeHost(t *testing.T) fakeHost {
	root := t.TempDir()
	h := fakeHost{hostProc{procRoot: filepath.Join(root, "proc"), cgroupRoot: filepath.Join(root, "cgroup")}, t}
	h.write(path.Join(h.procRoot, "sys/kernel/random/boot_id"), testBoot+"\n")
	return h
}

func (h fakeHost) write(p, content string) {
	h.t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// testShim is the parent of the processes of fakeHost: the task's shim.
const testShim = 26393

// process writes pid's stat (state, parent, start time) and its cgroup
// file (cgroup v1 with a freezer when v1 is true, else the unified
// hierarchy alone).
func (h fakeHost) process(pid int, state byte, parent int, startTicks uint64, cgroup string, v1 bool) {
	stat := fmt.Sprintf("%d (sleep) %c %d %d %d 0 -1 4194560 562 0 0 0 0 0 0 0 20 0 1 0 %d 2322432 330 18446744073709551615\n", pid, state, parent, pid, pid, startTicks)
	h.write(path.Join(h.procRoot, fmt.Sprint(pid), "stat"), stat)
	lines := "0::" + cgroup + "\n"
	if v1 {
		lines = "9:name=systemd:" + cgroup + "\n8:pids:" + cgroup + "\n6:freezer:" + cgroup + "\n1:cpu,cpuacct:" + cgroup + "\n" + lines
	}
	h.write(path.Join(h.procRoot, fmt.Sprint(pid), "cgroup"), lines)
}

func (h fakeHost) freezer(cgroup, state string) {
	h.write(path.Join(h.cgroupRoot, "freezer", cgroup, "freezer.state"), state+"\n")
}

func (h fakeHost) unifiedFreeze(cgroup, value string) {
	h.write(path.Join(h.cgroupRoot, cgroup, "cgroup.freeze"), value+"\n")
}

func TestAProcessIdentifiedAtItsStartIsVouchedForWhileItRunsThawed(t *testing.T) {
	h := newFakeHost(t)
	cg := "/lead/" + testID
	h.process(4242, 'S', testShim, 7355405, cg, true)
	h.freezer(cg, "THAWED")

	p := h.identify(4242, testID, h.bootID())
	if p == nil {
		t.Fatal("a live process in its container's cgroup was not identified")
	}
	want := procIdentity{Pid: 4242, Parent: testShim, StartTicks: 7355405, BootID: testBoot, FreezeFile: path.Join(h.cgroupRoot, "freezer", cg, "freezer.state")}
	if *p != want {
		t.Fatalf("identity %+v, want %+v", *p, want)
	}
	if !h.runs(p, testBoot) {
		t.Error("the same process, alive and thawed, is not vouched for")
	}
}

func TestARunIsNotVouchedForWhenTheKernelShowsAnythingElse(t *testing.T) {
	cg := "/lead/" + testID
	for _, tc := range []struct {
		name   string
		change func(h fakeHost)
		boot   string
	}{
		{"its PID now names another process", func(h fakeHost) { h.process(4242, 'S', testShim, 7355999, cg, true) }, testBoot},
		{"it exited and the shim has not reaped it yet", func(h fakeHost) { h.process(4242, 'Z', testShim, 7355405, cg, true) }, testBoot},
		{"its shim died: it has another parent", func(h fakeHost) { h.process(4242, 'S', 1, 7355405, cg, true) }, testBoot},
		{"it exited and was reaped", func(h fakeHost) { os.RemoveAll(path.Join(h.procRoot, "4242")) }, testBoot},
		{"its cgroup is frozen: the task is paused", func(h fakeHost) { h.freezer(cg, "FROZEN") }, testBoot},
		{"its cgroup is freezing", func(h fakeHost) { h.freezer(cg, "FREEZING") }, testBoot},
		{"the host booted again since", func(h fakeHost) {}, "7c0f0b52-1b7e-4b83-a1a4-2f4ad8d0b0aa"},
		{"the boot is unknown", func(h fakeHost) {}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHost(t)
			h.process(4242, 'S', testShim, 7355405, cg, true)
			h.freezer(cg, "THAWED")
			p := h.identify(4242, testID, testBoot)
			if p == nil {
				t.Fatal("not identified at start")
			}
			tc.change(h)
			if h.runs(p, tc.boot) {
				t.Error("vouched for")
			}
		})
	}
	if (hostProc{}).runs(nil, testBoot) {
		t.Error("a run with no identity recorded is vouched for")
	}
}

func TestAProcessIsIdentifiedOnlyInItsContainersCgroupAsContainerdLaysItOut(t *testing.T) {
	for _, tc := range []struct {
		name       string
		state      byte
		cgroup     string
		v1         bool
		wantFreeze string // relative to the cgroup root; "" for no identity
	}{
		{"cgroup v1 freezer", 'S', "/ns/" + testID, true, "freezer/ns/" + testID + "/freezer.state"},
		{"unified hierarchy only", 'R', "/ns/" + testID, false, "ns/" + testID + "/cgroup.freeze"},
		{"another container's cgroup", 'S', "/ns/0123", true, ""},
		{"a systemd scope named otherwise", 'S', "/system.slice/stack-" + testID + ".scope", false, ""},
		{"already a zombie", 'Z', "/ns/" + testID, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFakeHost(t)
			h.process(77, tc.state, testShim, 100, tc.cgroup, tc.v1)
			if tc.v1 {
				h.freezer(tc.cgroup, "THAWED")
			} else {
				h.unifiedFreeze(tc.cgroup, "0")
			}
			p := h.identify(77, testID, testBoot)
			switch {
			case tc.wantFreeze == "" && p != nil:
				t.Errorf("identified as %+v", *p)
			case tc.wantFreeze != "" && p == nil:
				t.Error("not identified")
			case p != nil && p.FreezeFile != path.Join(h.cgroupRoot, tc.wantFreeze):
				t.Errorf("freeze file %s, want %s", p.FreezeFile, path.Join(h.cgroupRoot, tc.wantFreeze))
			}
		})
	}
	h := newFakeHost(t)
	h.process(77, 'S', testShim, 100, "/ns/"+testID, true)
	if p := h.identify(77, testID, testBoot); p != nil {
		t.Errorf("identified without a freeze file to tell a pause by: %+v", *p)
	}
	h.freezer("/ns/"+testID, "THAWED")
	for _, tc := range []struct {
		name string
		pid  uint32
		boot string
	}{{"PID 0", 0, testBoot}, {"no such process", 78, testBoot}, {"the boot unknown", 77, ""}} {
		if p := h.identify(tc.pid, testID, tc.boot); p != nil {
			t.Errorf("%s: identified as %+v", tc.name, *p)
		}
	}
}

func TestTheUnifiedHierarchysFreezeFileShowsAPausedContainer(t *testing.T) {
	h := newFakeHost(t)
	cg := "/ns/" + testID
	h.process(77, 'S', testShim, 100, cg, false)
	h.unifiedFreeze(cg, "0")
	p := h.identify(77, testID, testBoot)
	if p == nil || !h.runs(p, testBoot) {
		t.Fatalf("a thawed process on cgroup v2 is not vouched for: %+v", p)
	}
	h.unifiedFreeze(cg, "1")
	if h.runs(p, testBoot) {
		t.Error("a frozen cgroup v2 is vouched for")
	}
}

func TestProcStatIsReadFromTheEndOfTheCommandName(t *testing.T) {
	tail := " 1 1 0 -1 4194560 562 0 0 0 0 0 0 0 20 0 1 0 7312202 2322432 330\n" // after the parent, 26393
	for _, tc := range []struct {
		line  string
		ok    bool
		state byte
	}{
		{"26514 (sleep) S 26393" + tail, true, 'S'},
		{"26514 (my (odd) name) R 26393" + tail, true, 'R'},
		{"26514 (a b c) Z 26393" + tail, true, 'Z'},
		{"26514 (sleep) S 26393 1 1", false, 0},
		{"26514 (sleep) S parent" + tail, false, 0},
		{"26514 sleep S 26393" + tail, false, 0},
		{"26514 (sleep) S 26393 1 1 0 -1 4194560 562 0 0 0 0 0 0 0 20 0 1 0 notanumber 2", false, 0},
	} {
		st, ok := parseProcStat([]byte(tc.line))
		if ok != tc.ok || (ok && (st.state != tc.state || st.parent != 26393 || st.startTicks != 7312202)) {
			t.Errorf("%q: %+v %v, want state %c parent 26393 start 7312202 ok %v", tc.line, st, ok, tc.state, tc.ok)
		}
	}
}

// The real kernel: a child process put in a cgroup of its own, named as
// containerd names a container's, is vouched for while it runs, not while
// its cgroup is frozen, and not once it is killed.
func TestTheRealKernelVouchesForALiveThawedProcessOnly(t *testing.T) {
	removeLeftUnitCgroups(realHost.cgroupRoot)
	id := fmt.Sprintf("%s%d", unitCgroupPrefix, os.Getpid())
	dir, freeze, frozen, thawedValue := path.Join(realHost.cgroupRoot, "freezer", id), "freezer.state", "FROZEN", "THAWED"
	if _, err := os.Stat(path.Join(realHost.cgroupRoot, "freezer")); err != nil {
		dir, freeze, frozen, thawedValue = path.Join(realHost.cgroupRoot, id), "cgroup.freeze", "1", "0"
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Skip("cannot create a cgroup (root and a writable cgroup fs are needed):", err)
	}
	child := exec.Command("sleep", "60")
	if err := child.Start(); err != nil {
		os.Remove(dir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		child.Process.Kill()
		child.Wait()
		removeUnitCgroup(dir, freeze, thawedValue)
	})
	if err := os.WriteFile(path.Join(dir, "cgroup.procs"), []byte(fmt.Sprint(child.Process.Pid)), 0o644); err != nil {
		t.Skip("cannot move a process into a cgroup:", err)
	}
	boot := realHost.bootID()
	p := realHost.identify(uint32(child.Process.Pid), id, boot)
	if p == nil {
		t.Fatalf("a live process in cgroup %s was not identified", dir)
	}
	if p.FreezeFile != path.Join(dir, freeze) {
		t.Errorf("freeze file %s, want %s", p.FreezeFile, path.Join(dir, freeze))
	}
	if !realHost.runs(p, boot) {
		t.Fatalf("a live, thawed process is not vouched for: %+v", *p)
	}
	other := *p
	other.StartTicks++
	if realHost.runs(&other, boot) {
		t.Error("an identity with another start time is vouched for")
	}

	if err := os.WriteFile(path.Join(dir, freeze), []byte(frozen), 0o644); err != nil {
		t.Fatal(err)
	}
	if realHost.runs(p, boot) {
		t.Error("a process in a frozen cgroup is vouched for")
	}
	if err := os.WriteFile(path.Join(dir, freeze), []byte(thawedValue), 0o644); err != nil {
		t.Fatal(err)
	}
	if !realHost.runs(p, boot) {
		t.Error("a process thawed again is not vouched for")
	}

	child.Process.Kill()
	child.Wait()
	if realHost.runs(p, boot) {
		t.Error("a killed process is vouched for")
	}
}

// unitCgroupPrefix names the cgroups the real-kernel test creates.
const unitCgroupPrefix = "stack-unit-"

// removeUnitCgroup thaws a cgroup the test created, kills what is left in
// it and removes it.
func removeUnitCgroup(dir, freeze, thawedValue string) {
	_ = os.WriteFile(path.Join(dir, freeze), []byte(thawedValue), 0o644)
	if b, err := os.ReadFile(path.Join(dir, "cgroup.procs")); err == nil {
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	}
	for range 50 { // the killed processes leave the cgroup once reaped
		if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// removeLeftUnitCgroups removes what a run of the real-kernel test killed
// halfway (a frozen sleep in its cgroup) left behind.
func removeLeftUnitCgroups(cgroupRoot string) {
	for _, c := range []struct{ parent, freeze, thawed string }{
		{path.Join(cgroupRoot, "freezer"), "freezer.state", "THAWED"},
		{cgroupRoot, "cgroup.freeze", "0"},
	} {
		left, _ := filepath.Glob(path.Join(c.parent, unitCgroupPrefix+"*"))
		for _, dir := range left {
			removeUnitCgroup(dir, c.freeze, c.thawed)
		}
	}
}
