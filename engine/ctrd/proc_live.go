package ctrd

import (
	"os"
	"path"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3"
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
// the start time (field 22) of a /proc/PID/stat line.
func parseProcStat(b []byte) (procStat, bool) {
	_, fields, ok := statFields(string(b))
	const stateField, parentField, startField = 3, 4, 22 // 1-based, as proc(5) numbers them
	if !ok || len(fields) <= startField-stateField || len(fields[0]) != 1 {
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

// statFields splits a /proc/PID/stat line into its command name (field 2)
// and the fields after it (fields[0] is field 3, the state). The name sits
// in parentheses and may itself hold spaces and parentheses, so fields
// are counted after the last ')'.
func statFields(s string) (comm string, fields []string, ok bool) {
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return "", nil, false
	}
	return s[open+1 : end], strings.Fields(s[end+1:]), true
}

// freezeFile is the file that shows whether pid's cgroup is frozen, given
// that pid sits in container id's cgroup (the last element of its path is
// the container ID, as containerd names it): cgroup v1's freezer.state
// when the freezer is mounted, else the unified hierarchy's cgroup.freeze.
// "" when pid is elsewhere.
func (h hostProc) freezeFile(pid int, id string) string {
	legacy, unified, err := cgroups.ParseCgroupFileUnified(path.Join(h.procRoot, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return ""
	}
	if freezer, ok := legacy["freezer"]; ok {
		if path.Base(freezer) != id {
			return ""
		}
		return path.Join(h.cgroupRoot, "freezer", freezer, "freezer.state")
	}
	if unified == "" || path.Base(unified) != id {
		return ""
	}
	return path.Join(h.cgroupRoot, unified, "cgroup.freeze")
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

func readTrimmed(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
