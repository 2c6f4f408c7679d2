package integration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/go-units"
)

const statsProject = `
services:
  mem:
    image: busybox
    command: ["sh", "-c", "sleep 1000 & sleep 1000 & sleep 1000 & wait"]
    mem_limit: 256m
    tmpfs:
      - /scratch
  busy:
    image: busybox
    command: ["sh", "-c", "while :; do :; done"]
  once:
    image: busybox
    command: ["true"]
  hostnet:
    image: busybox
    command: ["sleep", "1000"]
    network_mode: host
`

// statsJSON is one line of `stats --format json`, docker's fields.
type statsJSON struct {
	BlockIO, CPUPerc, Container, ID, MemPerc, MemUsage, Name, NetIO, PIDs string
}

func (p *projectEnv) statsLines(args ...string) map[string]statsJSON {
	p.t.Helper()
	out := p.mustRun(append([]string{"stats", "--no-stream", "--format", "json"}, args...)...)
	rows := map[string]statsJSON{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var fields map[string]any
		if err := json.Unmarshal([]byte(line), &fields); err != nil {
			p.t.Fatalf("stats line %q: %v", line, err)
		}
		var keys []string
		for k := range fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if got := strings.Join(keys, ","); got != "BlockIO,CPUPerc,Container,ID,MemPerc,MemUsage,Name,NetIO,PIDs" {
			p.t.Errorf("stats json fields %s, want docker's", got)
		}
		var r statsJSON
		json.Unmarshal([]byte(line), &r)
		rows[r.Name] = r
	}
	return rows
}

// memUsage reads "12.5MiB / 256MiB" as bytes used and limit.
func statsMemUsage(t *testing.T, s string) (int64, int64) {
	t.Helper()
	used, limit, ok := strings.Cut(s, " / ")
	u, err1 := units.RAMInBytes(used)
	l, err2 := units.RAMInBytes(limit)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("MemUsage %q: %v %v", s, err1, err2)
	}
	return u, l
}

func statsPercent(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil || !strings.HasSuffix(s, "%") {
		t.Fatalf("percentage %q: %v", s, err)
	}
	return v
}

func TestStatsShowsMemoryPidsAndCPUOfTheContainers(t *testing.T) {
	p := newProjectEnv(t, statsProject)
	p.mustRun("up", "-d")
	mem, busy, once := p.name("mem", 1), p.name("busy", 1), p.name("once", 1)

	rows := p.statsLines()
	if _, ok := rows[once]; ok {
		t.Errorf("stats lists the exited %s without -a", once)
	}
	m := rows[mem]
	if m.PIDs != "4" { // sh and its three sleeps
		t.Errorf("%s PIDs = %q, want 4", mem, m.PIDs)
	}
	before, limit := statsMemUsage(t, m.MemUsage)
	if limit != 256<<20 {
		t.Errorf("%s limit %d, want 256MiB (mem_limit)", mem, limit)
	}
	if m.ID != m.Container[:12] || len(m.Container) <= 12 {
		t.Errorf("ID %q should be the first 12 characters of %q", m.ID, m.Container)
	}

	// 64 MiB written to a tmpfs is memory of the container.
	p.sh(mem, "dd if=/dev/zero of=/scratch/blob bs=1M count=64 2>/dev/null")
	after, _ := statsMemUsage(t, p.statsLines("mem")[mem].MemUsage)
	t.Logf("%s memory: %d KiB before, %d KiB after writing 64 MiB to tmpfs", mem, before>>10, after>>10)
	if after-before < 60<<20 {
		t.Errorf("%s memory grew by %d bytes, want about 64 MiB", mem, after-before)
	}
	if pct := statsPercent(t, p.statsLines("mem")[mem].MemPerc); pct < 20 || pct > 40 {
		t.Errorf("%s MemPerc %.2f, want about 25%% of 256 MiB", mem, pct)
	}

	// A busy loop keeps one core busy: near 100 % on an idle host. The test
	// host's two cores may be shared, so the figure is held against the
	// container's cgroup CPU time over wall time measured around the run.
	usage := func() uint64 {
		n, _ := strconv.ParseUint(p.cgroupFile(busy, "cpuacct", "cpuacct.usage"), 10, 64)
		return n
	}
	u0, t0 := usage(), time.Now()
	cpu := statsPercent(t, p.statsLines("busy")[busy].CPUPerc)
	measured := float64(usage()-u0) / float64(time.Since(t0)) * 100
	t.Logf("%s CPU %.2f%% (cgroup time over wall time around the run: %.2f%%)", busy, cpu, measured)
	if cpu < 10 || cpu > 130 || cpu < measured-30 || cpu > measured+30 {
		t.Errorf("%s CPU %.2f%%, want about 100%% on an idle host, about %.0f%% as measured", busy, cpu, measured)
	}
	if idle := statsPercent(t, m.CPUPerc); idle > 10 {
		t.Errorf("%s (sleeping) CPU %.2f%%, want about 0", mem, idle)
	}

	// -a lists the exited container too, with zeros.
	all := p.statsLines("-a")
	if o, ok := all[once]; !ok || o.CPUPerc != "0.00%" || o.PIDs != "0" {
		t.Errorf("stats -a: %s = %+v, want listed with zeros", once, o)
	}
}

func TestStatsTableAndNetworkFigures(t *testing.T) {
	p := newProjectEnv(t, statsProject)
	p.mustRun("up", "-d", "mem", "hostnet")
	mem := p.name("mem", 1)
	var gw string
	for _, n := range p.observe().Networks {
		if n.Name == p.project+"_default" {
			gw = n.Gateway
		}
	}
	// Traffic to the project's own bridge only.
	p.sh(mem, "ping -c 3 -W 1 "+gw+" >/dev/null")
	rx, tx, _ := strings.Cut(p.statsLines()[mem].NetIO, " / ")
	if rx == "0B" || tx == "0B" {
		t.Errorf("NetIO %s / %s after pinging the gateway, want traffic both ways", rx, tx)
	}

	// In the host's network namespace a container has no traffic of its own.
	if got := p.statsLines("hostnet")[p.name("hostnet", 1)].NetIO; got != "0B / 0B" {
		t.Errorf("network_mode host: NetIO %q, want 0B / 0B", got)
	}

	out := p.mustRun("stats", "--no-stream", "mem")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	header := strings.Join(strings.Fields(lines[0]), " ")
	if header != "CONTAINER ID NAME CPU % MEM USAGE / LIMIT MEM % NET I/O BLOCK I/O PIDS" || len(lines) != 2 {
		t.Fatalf("stats --no-stream:\n%s", out)
	}
	if f := strings.Fields(lines[1]); len(f[0]) != 12 || f[1] != mem {
		t.Errorf("row %q", lines[1])
	}
	if out := p.mustRun("stats", "--no-stream", "--no-trunc", "mem"); !strings.Contains(out, p.container("mem").ID) {
		t.Errorf("--no-trunc shows no full ID:\n%s", out)
	}
	if r := p.run("stats", "--no-stream", "--format", "yaml"); r.code == 0 || !strings.Contains(r.stderr, "--format") {
		t.Errorf("--format yaml: exit %d, %q", r.code, r.stderr)
	}
}

// Without --no-stream, stats prints a snapshot every second until
// interrupted, and Ctrl-C ends it with exit 0.
func TestStatsStreamsUntilInterrupted(t *testing.T) {
	p := newProjectEnv(t, statsProject)
	p.mustRun("up", "-d", "mem")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, env.stackBin, "stats", "--format", "json")
	cmd.Dir = p.dir
	cmd.Env = append(os.Environ(), "STACK_CONTAINERD_ADDRESS="+env.socket, "STACK_NAMESPACE="+p.namespace, "STACK_STATE_DIR="+p.stateDir)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3500 * time.Millisecond)
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("stats after Ctrl-C: %v\n%s", err, stderr.String())
	}
	n := 0
	sc := bufio.NewScanner(&stdout)
	for sc.Scan() {
		if strings.Contains(sc.Text(), `"Name":"`+p.name("mem", 1)+`"`) {
			n++
		}
	}
	if n < 2 || n > 4 {
		t.Errorf("%d snapshots in 3.5 s, want one a second after the first:\n%s", n, stdout.String())
	}
}
