package main

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// tailRuns is how many times each `logs --tail` is timed.
const tailRuns = 9

// benchTail times `stack logs --tail N` (the whole CLI: start, observe,
// read) on a service whose log is 1 GiB, and on the same service with a
// 1 MiB log: --tail reads from the end, so both should cost the same.
func benchTail(ctx context.Context, r *stackRunner) ([]lifeRow, error) {
	err := r.writeLifeProject("  quiet:\n    image: busybox\n    command: [sleep, \"3600\"]\n    stop_signal: SIGKILL\n")
	if err != nil {
		return nil, err
	}
	if _, _, err := r.output(ctx, "up", "-d"); err != nil {
		return nil, err
	}
	defer r.down(ctx)
	logs, err := r.logFiles()
	if err != nil || len(logs) != 1 {
		return nil, fmt.Errorf("want the one log file of the quiet service, found %v (%v)", logs, err)
	}
	var path string
	for _, p := range logs {
		path = p
	}
	defer os.Remove(path)
	var rows []lifeRow
	for _, size := range []int64{1 << 30, 1 << 20} {
		start := time.Now()
		if err := writeJSONLog(path, size); err != nil {
			return nil, err
		}
		fmt.Fprintf(os.Stderr, "bench:   wrote a %d MiB json log in %v\n", size>>20, time.Since(start).Round(time.Millisecond))
		for _, n := range []int{1, 100} {
			s, err := timeTail(ctx, r, n)
			if err != nil {
				return nil, err
			}
			rows = append(rows, lifeRow{
				figure: fmt.Sprintf("logs --tail %d, %d MiB log", n, size>>20),
				value:  short(s.median()),
				detail: fmt.Sprintf("spread %s, %d runs of the CLI", s.spread(), len(s)),
				target: "<50ms", met: s.median() < 50*time.Millisecond,
			})
		}
	}
	return rows, nil
}

// timeTail runs `stack logs --tail n quiet` and checks it printed the n
// last lines.
func timeTail(ctx context.Context, r *stackRunner, n int) (sample, error) {
	var s sample
	for range tailRuns {
		out, took, err := r.output(ctx, "logs", "--no-color", "--tail", strconv.Itoa(n), "quiet")
		if err != nil {
			return nil, err
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != n || !strings.HasSuffix(lines[n-1], lastLogLine) {
			return nil, fmt.Errorf("logs --tail %d printed %d lines ending %q, want %d ending %q", n, len(lines), lines[len(lines)-1], n, lastLogLine)
		}
		s = append(s, took)
	}
	return s, nil
}

const lastLogLine = "the last line of the bench log"

// writeJSONLog replaces path with size bytes of json-file lines (about 120
// bytes each; the time goes forward a millisecond every MiB), written in
// place of the logger's file.
func writeJSONLog(path string, size int64) error {
	tmp := path + ".bench"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	defer os.Remove(tmp)
	last := fmt.Sprintf(`{"log":"%s\n","stream":"stdout","time":"%s"}`+"\n", lastLogLine, time.Now().UTC().Format(time.RFC3339Nano))
	t := time.Now().Add(-time.Hour).UTC()
	block, stamp := benchLogBlock(t)
	// Whole blocks only, at least one: the file is within a block of size.
	for written := int64(0); written == 0 || written+int64(len(block)) <= size; written += int64(len(block)) {
		next := []byte(t.Format(stampLayout))
		block = bytes.ReplaceAll(block, stamp, next)
		stamp, t = next, t.Add(time.Millisecond)
		if _, err := f.Write(block); err != nil {
			f.Close()
			return err
		}
	}
	if _, err := f.WriteString(last); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// stampLayout is RFC 3339 with all nine digits, so that every stamp has the
// same length and a block's stamps can be replaced in place.
const stampLayout = "2006-01-02T15:04:05.000000000Z07:00"

// benchLogBlock is 1 MiB of whole lines stamped t, and the stamp.
func benchLogBlock(t time.Time) (block, stamp []byte) {
	stamp = []byte(t.Format(stampLayout))
	for i := 0; len(block) < 1<<20; i++ {
		block = fmt.Appendf(block, `{"log":"GET /api/items/%06d 200 0.004s a typical access log line\n","stream":"stdout","time":"%s"}`+"\n", i, stamp)
	}
	return block, stamp
}

// The flood writer prints writerCopies times a file of whole lines of
// logLineLen bytes: logWriteBytes, 512 MiB less a line. The yes writer
// prints yesBytes of the same lines with busybox yes, whose small writes
// cost the container CPU as a program that logs as it works does.
const (
	logLineLen    = 100
	writerChunk   = (64 << 20) / logLineLen * logLineLen
	writerCopies  = 8
	logWriteBytes = writerChunk * writerCopies
	yesBytes      = (128 << 20) / logLineLen * logLineLen
	throughRuns   = 9
)

// benchLogThroughput runs containers that write as fast as they can
// through the real shim and `stack __log-driver` (default rotation,
// 10 MB × 3) and times them with their own clock (/proc/uptime, shared with
// the host): the flood writer for the throughput, until its last line is in
// the file; the yes writer against the same writing to /dev/null for the
// container's slowdown. Then the logging binary alone, fed by the bench.
func benchLogThroughput(ctx context.Context, r *stackRunner) ([]lifeRow, error) {
	line := strings.Repeat("x", logLineLen-1)
	flood := fmt.Sprintf(`yes %s | head -c %d >/tmp/lines; %s i=0; while [ $$i -lt %d ]; do dd if=/tmp/lines bs=1M 2>/dev/null; i=$$((i+1)); done; %s`,
		line, writerChunk, timedBegin, writerCopies, timedEnd)
	yes := func(redirect string) string {
		return fmt.Sprintf(`%s yes %s | head -c %d %s; %s`, timedBegin, line, yesBytes, redirect, timedEnd)
	}
	services := oneShot("flood", flood, "")
	for _, w := range yesWriters {
		services += oneShot(w.service, yes(w.redirect), "") + oneShot(w.service+"1", yes(w.redirect), pinnedCPU)
	}
	if err := r.writeLifeProject(services); err != nil {
		return nil, err
	}
	defer r.down(ctx)
	var landed sample
	pinned, spread := map[string]sample{}, map[string]sample{}
	for range throughRuns {
		run, err := runWriter(ctx, r, "flood")
		if err != nil {
			return nil, err
		}
		landed = append(landed, run.landed)
		for _, w := range yesWriters {
			for _, into := range []struct {
				service string
				s       map[string]sample
			}{{w.service + "1", pinned}, {w.service, spread}} {
				run, err := runWriter(ctx, r, into.service)
				if err != nil {
					return nil, err
				}
				into.s[w.service] = append(into.s[w.service], run.wrote)
			}
		}
	}
	aloneBytes, alone, err := benchDriverAlone(ctx, r)
	if err != nil {
		return nil, err
	}
	rows := throughputRows(landed, pinned, spread, aloneBytes, alone)
	host, err := benchHostPipe(ctx, line)
	if err != nil {
		return nil, err
	}
	return append(rows, host...), nil
}

// benchHostPipe runs the pinned yes writer on the host, without a
// container, into /dev/null and into cat on its own CPU and on the other
// one: what a pipe's reader costs its writer on this machine, whoever the
// reader is. A reader on another CPU is woken across CPUs, and in a VM
// that costs the writer more than a reader sharing its CPU.
func benchHostPipe(ctx context.Context, line string) ([]lifeRow, error) {
	if runtime.NumCPU() < 2 {
		return nil, nil
	}
	writer := fmt.Sprintf("taskset -c 0 busybox sh -c 'yes %s | head -c %d", line, yesBytes)
	scripts := map[string]string{
		"yesnull":  writer + " >/dev/null'",
		"samecpu":  writer + " | cat >/dev/null'",
		"othercpu": writer + "' | taskset -c 1 busybox cat >/dev/null",
	}
	s := map[string]sample{}
	for range throughRuns {
		for _, name := range []string{"yesnull", "samecpu", "othercpu"} {
			syscall.Sync()
			start := time.Now()
			if out, err := exec.CommandContext(ctx, "sh", "-c", scripts[name]).CombinedOutput(); err != nil {
				return nil, fmt.Errorf("host pipe writer %s: %w: %s", name, err, out)
			}
			s[name] = append(s[name], time.Since(start))
		}
	}
	row := func(into, figure string) lifeRow {
		r := pairedRatios(s[into], s["yesnull"])
		return lifeRow{figure: figure, value: r.percent(),
			detail: fmt.Sprintf("%s vs %s to /dev/null (medians of %d; %s)", short(s[into].median()),
				short(s["yesnull"].median()), len(s[into]), r.spread()),
			noTarget: true}
	}
	return []lifeRow{
		row("samecpu", "host, no container: yes|head on CPU 0 into cat on CPU 0"),
		row("othercpu", "host, no container: yes|head on CPU 0 into cat on CPU 1"),
	}, nil
}

// yesWriters are the yes writer into the log, into /dev/null (the
// baseline) and into a pipe that cat drops (the floor of any logger that
// reads a pipe). Each runs pinned to one CPU (pinnedCPU), which leaves the
// other to the logger as a single-threaded program's logging would, and
// unpinned: yes and head then take both CPUs of this machine, so any
// logger's CPU comes out of theirs, and they run at a speed that depends on
// whether the scheduler puts them on one CPU or two (±20% between runs).
var yesWriters = []struct{ service, redirect string }{
	{"yes", ""}, {"yesnull", ">/dev/null"}, {"yespipe", "| cat >/dev/null"},
}

const pinnedCPU = "    cpuset: \"0\"\n"

func throughputRows(landed sample, pinned, spread map[string]sample, aloneBytes int64, alone time.Duration) []lifeRow {
	// vsNull is, run by run, the time of the writer into into over the one
	// into /dev/null; the figure is the median of those ratios. The two
	// writers of one run follow each other within seconds, so a slow patch
	// of the host (this VM's CPUs drift by ±20% over a minute) weighs on
	// both sides of a ratio, where a ratio of the two medians could take
	// them from different patches.
	vsNull := func(s map[string]sample, into string) ratios { return pairedRatios(s[into], s["yesnull"]) }
	rate := mbps(logWriteBytes, landed.median())
	detail := func(s map[string]sample) string {
		return fmt.Sprintf("%d MiB: %s logged vs %s to /dev/null (medians of %d; %s and %s; %s)", yesBytes>>20,
			short(s["yes"].median()), short(s["yesnull"].median()), len(s["yes"]), s["yes"].spread(), s["yesnull"].spread(), vsNull(s, "yes").spread())
	}
	return []lifeRow{
		{figure: "logging throughput, container → shim → stack __log-driver → file",
			value:  fmt.Sprintf("%.0f MB/s", rate),
			detail: fmt.Sprintf("%d MiB in %d-byte lines until the last is in the file, median of %d (%s)", logWriteBytes>>20, logLineLen, len(landed), landed.spread()),
			target: "≥100MB/s", met: rate >= 100},
		{figure: "container slowed by its logging (busybox yes|head on CPU 0, vs. >/dev/null)",
			value:  vsNull(pinned, "yes").percent(),
			detail: detail(pinned),
			target: "≤10%", met: vsNull(pinned, "yes").median() <= 1.10},
		{figure: "  the floor: the same writer into a pipe that cat drops",
			value:    vsNull(pinned, "yespipe").percent(),
			detail:   fmt.Sprintf("%s (medians of %d; %s): the cost of any logger that reads a pipe", short(pinned["yespipe"].median()), len(pinned["yespipe"]), vsNull(pinned, "yespipe").spread()),
			noTarget: true},
		{figure: "container slowed by its logging, yes|head on both CPUs",
			value:    vsNull(spread, "yes").percent(),
			detail:   detail(spread) + "; the logger's CPU comes out of theirs",
			noTarget: true},
		{figure: "  the floor: the same writer into a pipe that cat drops",
			value:    vsNull(spread, "yespipe").percent(),
			detail:   fmt.Sprintf("%s (medians of %d; %s)", short(spread["yespipe"].median()), len(spread["yespipe"]), vsNull(spread, "yespipe").spread()),
			noTarget: true},
		{figure: "logging throughput, stack __log-driver alone (pipe → file)",
			value:    fmt.Sprintf("%.0f MB/s", mbps(aloneBytes, alone)),
			detail:   fmt.Sprintf("%d MiB of %d-byte lines written into its fd 3 by the bench", aloneBytes>>20, logLineLen),
			noTarget: true},
	}
}

// A timed writer prints BEGIN with the uptime, then its output, then END
// with the uptimes before and after ($$ is a $ after compose's
// interpolation).
const (
	timedBegin = `read u0 _ </proc/uptime; echo BEGIN $$u0;`
	timedEnd   = `read u1 _ </proc/uptime; echo; echo END $$u0 $$u1`
)

// oneShot is a service that runs script once; extra is more of its keys.
func oneShot(name, script, extra string) string {
	return fmt.Sprintf("  %s:\n    image: busybox\n    command: [sh, -c, %q]\n    restart: \"no\"\n%s", name, script, extra)
}

type writerRun struct {
	wrote  time.Duration // BEGIN to END, by the container
	landed time.Duration // BEGIN to END seen in the log file
}

// runWriter starts a one-off container of service and waits for its END
// line in the log.
//
// Each run starts with the host's dirty pages written back (sync(2)): the
// previous writer's log, up to 512 MiB, is otherwise still being flushed
// by the kernel while the next one runs, and slows whichever writer comes
// next, logged or not.
func runWriter(ctx context.Context, r *stackRunner, service string) (writerRun, error) {
	syscall.Sync()
	before, err := r.logFiles()
	if err != nil {
		return writerRun{}, err
	}
	if _, _, err := r.output(ctx, "run", "-d", service); err != nil {
		return writerRun{}, err
	}
	after, err := r.logFiles()
	if err != nil {
		return writerRun{}, err
	}
	for id, path := range after {
		if _, old := before[id]; !old {
			return waitEnd(ctx, path)
		}
	}
	return writerRun{}, fmt.Errorf("run -d %s: no new log file", service)
}

// waitEnd polls the end of the log for the END line and reads the host's
// uptime when it appears.
func waitEnd(ctx context.Context, path string) (writerRun, error) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if u0, u1, ok := findEnd(path); ok {
			u2, err := uptime()
			if err != nil {
				return writerRun{}, err
			}
			return writerRun{wrote: secs(u1 - u0), landed: secs(u2 - u0)}, nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return writerRun{}, fmt.Errorf("%s: no END line after 2 minutes", path)
}

// findEnd looks for `END u0 u1` in the last 4 KiB of the log.
func findEnd(path string) (u0, u1 float64, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	buf := make([]byte, 4096)
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, false
	}
	n, _ := f.ReadAt(buf, max(0, fi.Size()-int64(len(buf))))
	i := strings.LastIndex(string(buf[:n]), `{"log":"END `)
	if i < 0 {
		return 0, 0, false
	}
	rest := string(buf[i+len(`{"log":"END `) : n])
	fields := strings.Fields(strings.SplitN(rest, `\n`, 2)[0])
	if len(fields) != 2 {
		return 0, 0, false
	}
	u0, err0 := strconv.ParseFloat(fields[0], 64)
	u1, err1 := strconv.ParseFloat(fields[1], 64)
	return u0, u1, err0 == nil && err1 == nil
}

func uptime() (float64, error) {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("/proc/uptime: %q", b)
	}
	return strconv.ParseFloat(f[0], 64)
}

func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// benchDriverAlone runs `stack __log-driver` the way the shim does (fd 3
// stdout, fd 4 stderr, fd 5 readiness) and feeds it logWriteBytes of lines
// as fast as a pipe takes them; the time ends when it has written them all
// and exited.
func benchDriverAlone(ctx context.Context, r *stackRunner) (sent int64, took time.Duration, err error) {
	dir, err := os.MkdirTemp(r.dir, "driver-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	arg := url.Values{"path": {dir + "/d-json.log"}, "max-size": {"10485760"}, "max-file": {"3"}}.Encode()
	outR, outW, err := os.Pipe()
	if err != nil {
		return 0, 0, err
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		return 0, 0, err
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return 0, 0, err
	}
	cmd := exec.CommandContext(ctx, r.cfg.stack, "__log-driver", arg)
	cmd.ExtraFiles = []*os.File{outR, errR, readyW}
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() {
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	outR.Close()
	errR.Close()
	readyW.Close()
	if _, err := readyR.Read(make([]byte, 1)); err != nil {
		return 0, 0, fmt.Errorf("__log-driver never signalled readiness: %w", err)
	}
	readyR.Close()
	chunk := []byte(strings.Repeat(strings.Repeat("x", logLineLen-1)+"\n", (1<<20)/logLineLen))
	start := time.Now()
	for ; sent < logWriteBytes; sent += int64(len(chunk)) {
		if _, err := outW.Write(chunk); err != nil {
			return 0, 0, err
		}
	}
	outW.Close()
	errW.Close()
	if werr := cmd.Wait(); werr != nil {
		return 0, 0, fmt.Errorf("__log-driver: %w", werr)
	}
	return sent, time.Since(start), nil
}

// ratios is one figure per run, such as a run's time over another's.
type ratios []float64

func (r ratios) median() float64 { return medianOf(r) }

// percent is the median ratio as a change: "+12%".
func (r ratios) percent() string { return fmt.Sprintf("%+.0f%%", 100*(r.median()-1)) }

// spread is the runs' ratios as changes, least to most.
func (r ratios) spread() string {
	return fmt.Sprintf("runs' ratios %+.0f%% to %+.0f%%", 100*(slices.Min(r)-1), 100*(slices.Max(r)-1))
}

// pairedRatios divides each run's a by the same run's b.
func pairedRatios(a, b sample) ratios {
	out := make(ratios, 0, min(len(a), len(b)))
	for i := range min(len(a), len(b)) {
		out = append(out, float64(a[i])/float64(b[i]))
	}
	return out
}
