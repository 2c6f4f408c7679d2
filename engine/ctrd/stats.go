package ctrd

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
	v2 "github.com/containerd/cgroups/v3/cgroup2/stats"
	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/typeurl/v2"
)

// StatsSample is one reading of a container's counters, the raw figures
// behind a row of `stack stats`. Two samples give the CPU percentage.
type StatsSample struct {
	Read       time.Time
	CPUTotal   uint64 // CPU time used by the container, ns
	SystemCPU  uint64 // CPU time of the whole host (all CPUs), ns, from /proc/stat
	OnlineCPUs int
	MemUsage   uint64 // bytes, without the inactive page cache, as docker counts
	MemLimit   uint64 // bytes; the host's memory when the container has no limit
	NetRx      uint64 // bytes received on all interfaces but lo
	NetTx      uint64
	BlockRead  uint64 // bytes
	BlockWrite uint64
	PIDs       uint64
}

// ContainerStats reads the counters of the container's running task: its
// cgroup (through task.Metrics), its network namespace and the host's CPU
// time. A container without a running task wraps ErrNotRunning.
func (c *Client) ContainerStats(ctx context.Context, id string) (StatsSample, error) {
	task, st, err := c.liveTask(ctx, id)
	if err == nil && st != containerd.Running && st != containerd.Paused {
		err = ErrNotRunning
	}
	if err != nil {
		return StatsSample{}, fmt.Errorf("stats of container %s: %w", id, err)
	}
	m, err := task.Metrics(ctx)
	if err != nil {
		return StatsSample{}, fmt.Errorf("stats of container %s: %w", id, err)
	}
	data, err := typeurl.UnmarshalAny(m.Data)
	if err != nil {
		return StatsSample{}, fmt.Errorf("stats of container %s: decode metrics: %w", id, err)
	}
	var s StatsSample
	switch m := data.(type) {
	case *v1.Metrics:
		s = statsFromCgroup1(m)
	case *v2.Metrics:
		s = statsFromCgroup2(m)
	default:
		return StatsSample{}, fmt.Errorf("stats of container %s: unknown metrics type %T", id, data)
	}
	s.Read = time.Now()
	s.SystemCPU, s.OnlineCPUs = statsHostCPU()
	if total := statsHostMemory(); s.MemLimit == 0 || total > 0 && s.MemLimit > total {
		s.MemLimit = total
	}
	s.NetRx, s.NetTx = statsNetIO(int(task.Pid()))
	return s, nil
}

// statsNetIO reads the traffic of the task's network namespace. A task in
// stack's own namespace, the host's (network_mode: host), has no traffic
// of its own, as docker shows it.
func statsNetIO(pid int) (rx, tx uint64) {
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	if host, herr := os.Readlink("/proc/self/ns/net"); err != nil || herr == nil && ns == host {
		return 0, 0
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	return statsParseNetDev(f)
}

func statsFromCgroup1(m *v1.Metrics) StatsSample {
	var s StatsSample
	if m.CPU != nil && m.CPU.Usage != nil {
		s.CPUTotal = m.CPU.Usage.Total
	}
	if mem := m.Memory; mem != nil && mem.Usage != nil {
		s.MemUsage, s.MemLimit = statsWithoutCache(mem.Usage.Usage, mem.TotalInactiveFile), mem.Usage.Limit
	}
	if m.Blkio != nil {
		for _, e := range m.Blkio.IoServiceBytesRecursive {
			switch strings.ToLower(e.Op) {
			case "read":
				s.BlockRead += e.Value
			case "write":
				s.BlockWrite += e.Value
			}
		}
	}
	if m.Pids != nil {
		s.PIDs = m.Pids.Current
	}
	return s
}

func statsFromCgroup2(m *v2.Metrics) StatsSample {
	var s StatsSample
	if m.CPU != nil {
		s.CPUTotal = m.CPU.UsageUsec * 1000
	}
	if m.Memory != nil {
		s.MemUsage, s.MemLimit = statsWithoutCache(m.Memory.Usage, m.Memory.InactiveFile), m.Memory.UsageLimit
	}
	if m.Io != nil {
		for _, e := range m.Io.Usage {
			s.BlockRead += e.Rbytes
			s.BlockWrite += e.Wbytes
		}
	}
	if m.Pids != nil {
		s.PIDs = m.Pids.Current
	}
	return s
}

// withoutCache is docker's memory usage: the inactive file cache can be
// reclaimed, so it does not count.
func statsWithoutCache(usage, inactiveFile uint64) uint64 {
	if inactiveFile < usage {
		return usage - inactiveFile
	}
	return usage
}

// StatsFigures is one row of `stack stats`: rates from two samples.
type StatsFigures struct {
	CPUPercent float64
	MemPercent float64
	StatsSample
}

// ComputeStats turns two samples of one container into a row, as docker
// does: CPU % = container CPU delta / host CPU delta × online CPUs × 100,
// so a container keeping one core busy shows 100 %.
func ComputeStats(prev, cur StatsSample) StatsFigures {
	f := StatsFigures{StatsSample: cur}
	cpuDelta := float64(cur.CPUTotal) - float64(prev.CPUTotal)
	sysDelta := float64(cur.SystemCPU) - float64(prev.SystemCPU)
	if cpuDelta > 0 && sysDelta > 0 && prev.SystemCPU > 0 {
		f.CPUPercent = cpuDelta / sysDelta * float64(cur.OnlineCPUs) * 100
	}
	if cur.MemLimit > 0 {
		f.MemPercent = float64(cur.MemUsage) / float64(cur.MemLimit) * 100
	}
	return f
}

// hostCPU reads /proc/stat: the host's CPU time in ns (user through
// softirq, as docker sums it) and the number of online CPUs.
func statsHostCPU() (uint64, int) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	return statsParseProcStat(f)
}

func statsParseProcStat(r io.Reader) (uint64, int) {
	var total uint64
	cpus := 0
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || !strings.HasPrefix(fields[0], "cpu") {
			continue
		}
		if fields[0] != "cpu" {
			cpus++
			continue
		}
		if len(fields) < 8 {
			return 0, 0
		}
		for _, v := range fields[1:8] {
			n, _ := strconv.ParseUint(v, 10, 64)
			total += n
		}
	}
	return total * uint64(time.Second) / clockTicks, cpus
}

// hostMemory is MemTotal from /proc/meminfo, in bytes.
func statsHostMemory() uint64 {
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.ParseUint(f[0], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

// parseNetDev sums received and transmitted bytes of /proc/<pid>/net/dev
// (the task's network namespace), loopback left out.
func statsParseNetDev(r io.Reader) (rx, tx uint64) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.TrimSpace(name) == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			continue
		}
		r, _ := strconv.ParseUint(f[0], 10, 64)
		t, _ := strconv.ParseUint(f[8], 10, 64)
		rx, tx = rx+r, tx+t
	}
	return rx, tx
}
