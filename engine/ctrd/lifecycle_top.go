package ctrd

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
)

// TopProcess is one row of `stack top`, in ps -ef's columns.
type TopProcess struct {
	UID   string
	PID   int
	PPID  int
	C     int    // CPU use in percent over the process's life
	STIME string // start: HH:MM today, else Jan02
	TTY   string
	TIME  string // CPU time, [DD-]HH:MM:SS
	CMD   string
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go supports.
const clockTicks = 100

// TopContainer lists the processes of the container's running task, read
// from /proc, ordered by PID.
func (c *Client) TopContainer(ctx context.Context, id string) ([]TopProcess, error) {
	task, st, err := c.liveTask(ctx, id)
	if err == nil && st != containerd.Running && st != containerd.Paused {
		err = ErrNotRunning
	}
	if err != nil {
		return nil, fmt.Errorf("top container %s: %w", id, err)
	}
	pids, err := task.Pids(ctx)
	if err != nil {
		return nil, fmt.Errorf("top container %s: %w", id, err)
	}
	boot, uptime := bootTime()
	var out []TopProcess
	for _, p := range pids {
		if tp, err := readProc("/proc", int(p.Pid), boot, uptime); err == nil {
			out = append(out, tp)
		}
	}
	slices.SortFunc(out, func(a, b TopProcess) int { return a.PID - b.PID })
	return out, nil
}

// bootTime returns when the host booted and for how long it has run.
func bootTime() (time.Time, time.Duration) {
	data, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return time.Time{}, 0
	}
	f := strings.Fields(string(data))
	secs, _ := strconv.ParseFloat(f[0], 64)
	up := time.Duration(secs * float64(time.Second))
	return time.Now().Add(-up), up
}

// readProc reads one process from procRoot/<pid>/{stat,status,cmdline}.
func readProc(procRoot string, pid int, boot time.Time, uptime time.Duration) (TopProcess, error) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return TopProcess{}, err
	}
	tp, start, err := parseStat(string(stat))
	if err != nil {
		return TopProcess{}, fmt.Errorf("%s: %w", dir, err)
	}
	tp.UID = "?"
	if status, err := os.ReadFile(filepath.Join(dir, "status")); err == nil {
		tp.UID = userName(statusUID(string(status)))
	}
	if cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil && len(cmdline) > 0 {
		tp.CMD = strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
	}
	started := boot.Add(start)
	if ran := uptime - start; ran > 0 {
		tp.C = int(cpuTime(tp.TIME) * 100 / ran)
	}
	tp.TIME = formatCPU(cpuTime(tp.TIME))
	tp.STIME = formatStart(started, time.Now())
	return tp, nil
}

// parseStat reads /proc/<pid>/stat (see statFields). TIME carries the raw
// tick count until readProc formats it.
func parseStat(s string) (TopProcess, time.Duration, error) {
	comm, f, ok := statFields(s) // f[0] is field 3 (state)
	if !ok {
		return TopProcess{}, 0, fmt.Errorf("malformed stat %q", s)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:strings.IndexByte(s, '(')]))
	if err != nil {
		return TopProcess{}, 0, fmt.Errorf("malformed stat pid: %w", err)
	}
	if len(f) < 20 {
		return TopProcess{}, 0, fmt.Errorf("short stat %q", s)
	}
	num := func(i int) int64 { n, _ := strconv.ParseInt(f[i], 10, 64); return n }
	tp := TopProcess{PID: pid, PPID: int(num(1)), TTY: ttyName(num(4)), CMD: "[" + comm + "]"}
	tp.TIME = strconv.FormatInt(num(11)+num(12), 10) // utime + stime
	return tp, time.Duration(num(19)) * time.Second / clockTicks, nil
}

func cpuTime(ticks string) time.Duration {
	n, _ := strconv.ParseInt(ticks, 10, 64)
	return time.Duration(n) * time.Second / clockTicks
}

// ttyName decodes tty_nr: pts (major 136–143) and tty (major 4), else "?".
func ttyName(nr int64) string {
	major, minor := (nr>>8)&0xfff, (nr&0xff)|((nr>>12)&0xfff00)
	switch {
	case nr == 0:
		return "?"
	case major >= 136 && major <= 143:
		return fmt.Sprintf("pts/%d", (major-136)*256+minor)
	case major == 4:
		return fmt.Sprintf("tty%d", minor)
	}
	return "?"
}

func statusUID(status string) string {
	for _, line := range strings.Split(status, "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			if f := strings.Fields(rest); len(f) > 1 {
				return f[1] // effective
			}
		}
	}
	return "?"
}

// userName is the host's name for uid, as ps prints it, else the number.
func userName(uid string) string {
	if u, err := user.LookupId(uid); err == nil {
		return u.Username
	}
	return uid
}

func formatCPU(d time.Duration) string {
	s := int(d.Seconds())
	days, h, m, sec := s/86400, s/3600%24, s/60%60, s%60
	if days > 0 {
		return fmt.Sprintf("%d-%02d:%02d:%02d", days, h, m, sec)
	}
	return fmt.Sprintf("%02d:%02d:%02d", h, m, sec)
}

func formatStart(t, now time.Time) string {
	if t.YearDay() == now.YearDay() && t.Year() == now.Year() {
		return t.Format("15:04")
	}
	return t.Format("Jan02")
}
