package ctrd

import (
	"math"
	"strings"
	"testing"
	"time"

	v1 "github.com/containerd/cgroups/v3/cgroup1/stats"
)

func TestCPUPercentIsContainerDeltaOverHostDeltaTimesCPUs(t *testing.T) {
	sec := uint64(time.Second)
	prev := StatsSample{CPUTotal: 10 * sec, SystemCPU: 1000 * sec, OnlineCPUs: 2}
	for _, tc := range []struct {
		name       string
		cpu, host  uint64 // deltas over the interval
		cpus       int
		wantPctCPU float64
	}{
		// 1 s of wall time on 2 CPUs is 2 s of host CPU time.
		{"one core busy on two", 1 * sec, 2 * sec, 2, 100},
		{"both cores busy", 2 * sec, 2 * sec, 2, 200},
		{"a quarter of one core", sec / 4, 2 * sec, 2, 25},
		{"idle", 0, 2 * sec, 2, 0},
		{"host counter did not move", sec, 0, 2, 0},
		{"one core busy on eight", 1 * sec, 8 * sec, 8, 100},
	} {
		cur := StatsSample{CPUTotal: prev.CPUTotal + tc.cpu, SystemCPU: prev.SystemCPU + tc.host, OnlineCPUs: tc.cpus}
		if got := ComputeStats(prev, cur).CPUPercent; math.Abs(got-tc.wantPctCPU) > 1e-9 {
			t.Errorf("%s: CPU %% = %v, want %v", tc.name, got, tc.wantPctCPU)
		}
	}
	// Without an earlier sample there is no rate.
	if got := ComputeStats(StatsSample{}, StatsSample{CPUTotal: sec, SystemCPU: 1000 * sec, OnlineCPUs: 2}).CPUPercent; got != 0 {
		t.Errorf("first sample: CPU %% = %v, want 0", got)
	}
}

func TestMemPercentIsUsageOverLimit(t *testing.T) {
	f := ComputeStats(StatsSample{}, StatsSample{MemUsage: 16 << 20, MemLimit: 64 << 20})
	if f.MemPercent != 25 {
		t.Errorf("MemPercent = %v, want 25", f.MemPercent)
	}
	if f := ComputeStats(StatsSample{}, StatsSample{MemUsage: 1}); f.MemPercent != 0 {
		t.Errorf("no limit: MemPercent = %v, want 0", f.MemPercent)
	}
}

func TestCgroup1MetricsAsDockerCountsThem(t *testing.T) {
	m := &v1.Metrics{
		CPU:    &v1.CPUStat{Usage: &v1.CPUUsage{Total: 123}},
		Memory: &v1.MemoryStat{TotalInactiveFile: 30, Usage: &v1.MemoryEntry{Usage: 100, Limit: 1000}},
		Blkio: &v1.BlkIOStat{IoServiceBytesRecursive: []*v1.BlkIOEntry{
			{Op: "Read", Value: 5}, {Op: "Write", Value: 7}, {Op: "Read", Value: 1}, {Op: "Total", Value: 13},
		}},
		Pids: &v1.PidsStat{Current: 4},
	}
	s := statsFromCgroup1(m)
	want := StatsSample{CPUTotal: 123, MemUsage: 70, MemLimit: 1000, BlockRead: 6, BlockWrite: 7, PIDs: 4}
	if s != want {
		t.Errorf("got %+v, want %+v", s, want)
	}
	if s := statsFromCgroup1(&v1.Metrics{}); s != (StatsSample{}) {
		t.Errorf("empty metrics: %+v", s)
	}
}

func TestProcStatSumsUserThroughSoftirq(t *testing.T) {
	stat := `cpu  100 10 50 1000 5 1 2 99 0 0
cpu0 50 5 25 500 3 1 1 50 0 0
cpu1 50 5 25 500 2 0 1 49 0 0
intr 12345
`
	total, cpus := statsParseProcStat(strings.NewReader(stat))
	// 100+10+50+1000+5+1+2 = 1168 ticks of 10 ms; steal (99) is left out.
	if total != 1168*uint64(10*time.Millisecond) || cpus != 2 {
		t.Errorf("total %d ns, %d cpus; want %d, 2", total, cpus, 1168*uint64(10*time.Millisecond))
	}
}

func TestNetDevLeavesLoopbackOut(t *testing.T) {
	dev := `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  999999      10    0    0    0     0          0         0   999999      10    0    0    0     0       0          0
  eth0:    1500      12    0    0    0     0          0         0      700       8    0    0    0     0       0          0
  eth1:     500       2    0    0    0     0          0         0      300       1    0    0    0     0       0          0
`
	rx, tx := statsParseNetDev(strings.NewReader(dev))
	if rx != 2000 || tx != 1000 {
		t.Errorf("rx %d tx %d, want 2000 1000", rx, tx)
	}
}
