package ctrd

import (
	"bytes"
	"os"
	"path"
	"strconv"
	"strings"
)

// procIdentity names one run's init process beyond its PID, which the
// kernel reuses: its start time in clock ticks after boot, and the boot.
// runc itself decides whether a container still runs the same way, from
// the PID and start time it keeps in its state. Parent is the task's shim,
// which reaps the init and reports its exit: a shim that died leaves the
// process to another parent, and containerd must be asked. FreezeFile is
// the container's cgroup freezer state, which shows a paused container.
type procIdentity struct {
	Pid        int    `json:"pid"`
	Parent     int    `json:"parent"`
	StartTicks uint64 `json:"startTicks"`
	BootID     string `json:"bootID"`
	FreezeFile string `json:"freezeFile"`
}

// hostProc is where the kernel's views are read from: tests point it at a
// copy.
type hostProc struct {
	procRoot   string // /proc
	cgroupRoot string // /sys/fs/cgroup
}

var realHost = hostProc{procRoot: "/proc", cgroupRoot: "/sys/fs/cgroup"}

// bootID names this boot of the host; "" when it cannot be read, which
// vouches for nothing.
func (h hostProc) bootID() string {
	return readTrimmed(path.Join(h.procRoot, "sys/kernel/random/boot_id"))
}

// identify reads the identity of process pid, the init of container id's
// task just created; nil when it cannot be read (it has already exited,
// /proc is not the host's, the cgroup is not laid out as containerd lays
// it out or has no freeze file), which leaves that run to be observed
// through containerd.
func (h hostProc) identify(pid uint32, id, boot string) *procIdentity {
	if pid == 0 || boot == "" {
		return nil
	}
	st, ok := h.stat(int(pid))
	if !ok || !st.alive() {
		return nil
	}
	freeze := h.freezeFile(int(pid), id)
	if freeze == "" || readTrimmed(freeze) == "" {
		return nil
	}
	return &procIdentity{Pid: int(pid), Parent: st.parent, StartTicks: st.startTicks, BootID: boot, FreezeFile: freeze}
}

// runs reports whether the process p names still runs under the same
// shim, in a cgroup that is not frozen: then its task is running, and
// containerd need not ask the task's shim. False means "ask containerd",
// never "stopped": a zombie not yet reaped, a frozen (maybe paused)
// cgroup, a PID now used by another process, a shim gone, a record from
// before a reboot, a /proc that is not the host's all answer false.
func (h hostProc) runs(p *procIdentity, boot string) bool {
	if p == nil || p.Pid <= 0 || boot == "" || p.BootID != boot {
		return false
	}
	st, ok := h.stat(p.Pid)
	if !ok || !st.alive() || st.startTicks != p.StartTicks || st.parent != p.Parent {
		return false
	}
	return thawed(p.FreezeFile)
}

type procStat struct {
	state      byte
	parent     int
	startTicks uint64
}

// alive is false for a zombie (exited, not yet reaped by the shim) and a
// dead process.
func (s procStat) alive() bool { return s.state != 'Z' && s.state != 'X' && s.state != 'x' }

func (h hostProc) stat(pid int) (procStat, bool) {
	b, err := os.ReadFile(path.Join(h.procRoot, strconv.Itoa(pid), "stat"))
	if err != nil {
		return procStat{}, false
	}
	return parseProcStat(b)
}

// parseProcStat reads the state (field 3), the parent's PID (field 4) and
// the start time (field 22) of a /proc/PID/stat line. The command name
// (field 2) may hold spaces and parentheses, so fields are counted from
// its closing parenthesis.
func parseProcStat(b []byte) (procStat, bool) {
	end := bytes.LastIndexByte(b, ')')
	if end < 0 {
		return procStat{}, false
	}
	fields := strings.Fields(string(b[end+1:]))
	const stateField, parentField, startField = 3, 4, 22 // 1-based, as proc(5) numbers them
	if len(fields) <= startField-stateField || len(fields[0]) != 1 {
		return procStat{}, false
	}
	parent, err := strconv.Atoi(fields[parentField-stateField])
	if err != nil {
		return procStat{}, false
	}
	start, err := strconv.ParseUint(fields[startField-stateField], 10, 64)
	if err != nil {
		return procStat{}, false
	}
	return procStat{state: fields[0][0], parent: parent, startTicks: start}, true
}

// freezeFile is the file that shows whether pid's cgroup is frozen, given
// that pid sits in container id's cgroup (the last element of its path is
// the container ID, as containerd names it): cgroup v1's freezer.state
// when the freezer is mounted, else the unified hierarchy's cgroup.freeze.
// "" when pid is elsewhere.
func (h hostProc) freezeFile(pid int, id string) string {
	b, err := os.ReadFile(path.Join(h.procRoot, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return ""
	}
	v1, v2, hasV1, hasV2 := cgroupPaths(string(b))
	switch {
	case hasV1 && path.Base(v1) == id:
		return path.Join(h.cgroupRoot, "freezer", v1, "freezer.state")
	case !hasV1 && hasV2 && path.Base(v2) == id:
		return path.Join(h.cgroupRoot, v2, "cgroup.freeze")
	}
	return ""
}

// thawed reads a freeze file: THAWED (v1) or 0 (v2) mean the cgroup's
// processes run.
func thawed(freezeFile string) bool {
	if freezeFile == "" {
		return false
	}
	switch readTrimmed(freezeFile) {
	case "THAWED":
		return path.Base(freezeFile) == "freezer.state"
	case "0":
		return path.Base(freezeFile) == "cgroup.freeze"
	}
	return false
}

// cgroupPaths finds the freezer controller's path (cgroup v1) and the
// unified hierarchy's path in a /proc/PID/cgroup file.
func cgroupPaths(content string) (v1, v2 string, hasV1, hasV2 bool) {
	for line := range strings.Lines(content) {
		parts := strings.SplitN(strings.TrimRight(line, "\n"), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[0] == "0" && parts[1] == "" {
			v2, hasV2 = parts[2], true
		}
		for _, ctl := range strings.Split(parts[1], ",") {
			if ctl == "freezer" {
				v1, hasV1 = parts[2], true
			}
		}
	}
	return v1, v2, hasV1, hasV2
}

func readTrimmed(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
