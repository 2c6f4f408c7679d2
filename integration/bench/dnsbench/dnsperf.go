package main

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/stackdev/stack/netdns"
)

// The workloads: local names only, forwarded names only, half of each.
const (
	local     = "local"
	forwarded = "forwarded"
	mix       = "mix"
)

var workloads = []string{local, forwarded, mix}

// writeQueryFiles writes one dnsperf data file per workload.
func writeQueryFiles(dir string, names []benchName) (map[string]string, error) {
	const forwardNames = 100
	var loc, fwd, mixed []string
	for _, n := range names {
		loc = append(loc, n.name+" A")
	}
	for i := range forwardNames {
		fwd = append(fwd, fmt.Sprintf("n%d.%s A", i, fwdDomain))
	}
	for i := range max(len(loc), len(fwd)) {
		mixed = append(mixed, loc[i%len(loc)], fwd[i%len(fwd)])
	}
	files := map[string]string{}
	for w, lines := range map[string][]string{local: loc, forwarded: fwd, mix: mixed} {
		p := filepath.Join(dir, w+".queries")
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			return nil, err
		}
		files[w] = p
	}
	return files, nil
}

// row is one server × workload.
type row struct {
	server, workload string
	qps              float64         // peak: the median run's
	peaks            []float64       // each peak run's, sorted
	serverCPU        float64         // the server's CPU use at the peak, in CPUs (1 = one whole CPU)
	clientCPU        float64         // dnsperf's, the same way
	lost             float64         // share of queries lost at the peak
	rcodes           string          // at the peak, e.g. "NOERROR 100%"
	halfQPS          float64         // the rate asked for in the latency run
	p50, p99, max    time.Duration   // medians over the half-rate runs (max: the largest)
	p99s             []time.Duration // each run's p99, sorted
	samples          int
	// The probe's, beside dnsperf in the same runs (probe.go).
	probeP50, probeP99, probeMax time.Duration
	probeP99s                    []time.Duration
	probeLost, probeSamples      int
	rssKB                        int // VmRSS after the runs; 0 when unknown
}

// measure finds the peak rate with dnsperf (the median of peakRuns runs),
// then the latency distribution at half of it from dnsperf's per-query
// report (-v), with the CPUs' idle exits held short (holdIdleLatency).
func measure(ctx context.Context, cfg config, s *server, workload, file string) (row, error) {
	common := dnsperfCommon(cfg)
	r, err := peak(ctx, cfg, s, workload, file, common)
	if err != nil {
		return r, err
	}
	r.halfQPS = r.qps / 2
	if cfg.idleLatency >= 0 {
		release, err := holdIdleLatency(cfg.idleLatency)
		if err != nil {
			return r, err
		}
		defer release()
	}
	var p50s, probeP50s []time.Duration
	for range cfg.halfRuns {
		out, pr, err := halfRun(ctx, cfg, s, file, append(common, "-Q", strconv.Itoa(max(1, int(r.halfQPS))), "-v"))
		if err != nil {
			return r, err
		}
		r.probeSamples += len(pr.latencies)
		r.probeLost += pr.lost
		probeP50s = append(probeP50s, pr.latencies[len(pr.latencies)/2])
		r.probeP99s = append(r.probeP99s, pr.latencies[min(len(pr.latencies)-1, len(pr.latencies)*99/100)])
		r.probeMax = max(r.probeMax, pr.latencies[len(pr.latencies)-1])
		lat := parseLatencies(out)
		if len(lat) == 0 {
			return r, fmt.Errorf("dnsperf -v reported no query latencies")
		}
		slices.Sort(lat)
		r.samples += len(lat)
		p50s = append(p50s, lat[len(lat)/2])
		r.p99s = append(r.p99s, lat[min(len(lat)-1, len(lat)*99/100)])
		r.max = max(r.max, lat[len(lat)-1])
	}
	slices.Sort(p50s)
	slices.Sort(r.p99s)
	r.p50, r.p99 = p50s[len(p50s)/2], r.p99s[len(r.p99s)/2]
	slices.Sort(probeP50s)
	slices.Sort(r.probeP99s)
	r.probeP50, r.probeP99 = probeP50s[len(probeP50s)/2], r.probeP99s[len(r.probeP99s)/2]
	r.rssKB = vmRSS(s.pid)
	return r, nil
}

// dnsperfCommon are the dnsperf options of every run of cfg.
func dnsperfCommon(cfg config) []string {
	return []string{"-c", strconv.Itoa(cfg.clients), "-T", strconv.Itoa(cfg.threads), "-q", strconv.Itoa(cfg.outstanding)}
}

// peak is the median of peakRuns unlimited-rate runs, with each run's rate.
func peak(ctx context.Context, cfg config, s *server, workload, file string, common []string) (row, error) {
	var peaks []row
	for range peakRuns {
		p, err := peakRun(ctx, cfg, s, file, common)
		if err != nil {
			return row{}, err
		}
		peaks = append(peaks, p)
	}
	slices.SortFunc(peaks, func(a, b row) int { return cmp.Compare(a.qps, b.qps) })
	r := peaks[len(peaks)/2]
	r.server, r.workload = s.name, workload
	for _, p := range peaks {
		r.peaks = append(r.peaks, p.qps)
	}
	return r, nil
}

// halfRun is one latency run at half the peak: dnsperf with its
// per-query report, and the probe beside it from half a second after
// dnsperf starts to half a second before it ends, so that it samples the
// steady load only.
func halfRun(ctx context.Context, cfg config, s *server, file string, args []string) (string, probeResult, error) {
	type perf struct {
		out string
		err error
	}
	perfDone := make(chan perf, 1)
	go func() {
		out, _, err := dnsperf(ctx, cfg, s.addr, file, cfg.halfFor, args...)
		perfDone <- perf{out, err}
	}()
	const margin = 500 * time.Millisecond
	var pr probeResult
	var probeErr error
	select {
	case <-time.After(margin):
		pr, probeErr = probe(ctx, cfg, s.addr, file, max(margin, cfg.halfFor-2*margin))
	case <-ctx.Done():
		probeErr = ctx.Err()
	}
	p := <-perfDone
	if p.err != nil {
		return "", pr, p.err
	}
	return p.out, pr, probeErr
}

// peakRuns is how many peak runs each server and workload gets: a single
// run's rate moved by a fifth between runs on a quiet 2-CPU host, the
// median of three by much less.
const peakRuns = 3

// peakRun is one unlimited-rate run: its rate, losses, rcodes and each
// side's CPU.
func peakRun(ctx context.Context, cfg config, s *server, file string, common []string) (row, error) {
	var r row
	before, wall := cpuTicks(s.pid), time.Now()
	out, clientCPU, err := dnsperf(ctx, cfg, s.addr, file, cfg.peakFor, common...)
	if err != nil {
		return r, err
	}
	if after := cpuTicks(s.pid); before >= 0 && after >= before {
		r.serverCPU = float64(after-before) / clockTicks / time.Since(wall).Seconds()
	}
	r.clientCPU = clientCPU
	if r.qps, r.lost, err = parseSummary(out); err != nil {
		return r, err
	}
	r.rcodes = parseRcodes(out)
	return r, nil
}

// dnsperf runs dnsperf on the client CPU and returns its output and the
// CPU it used (user + system time over the run's wall time).
func dnsperf(ctx context.Context, cfg config, addr netip.Addr, file string, d time.Duration, args ...string) (string, float64, error) {
	ctx, cancel := context.WithTimeout(ctx, d+15*time.Second)
	defer cancel()
	secs := strconv.Itoa(int(d / time.Second))
	all := append([]string{"dnsperf", "-s", addr.String(), "-a", clientAddr.String(), "-d", file, "-l", secs, "-t", "2"}, args...)
	all = cfg.onCPU(cfg.clientCPU, all...)
	// The report goes to a file, not to a pipe this process reads during the
	// run: with -v dnsperf writes a line per query, and a reader woken for
	// every few kilobytes competes with the server and with dnsperf's own
	// receiving thread, which then stamps replies late.
	report, err := os.CreateTemp(cfg.dir, "dnsperf-*.out")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(report.Name())
	defer report.Close()
	cmd := exec.CommandContext(ctx, all[0], all[1:]...)
	cmd.Stdout, cmd.Stderr = report, report
	start := time.Now()
	err = cmd.Run()
	elapsed := time.Since(start)
	outBytes, readErr := os.ReadFile(report.Name())
	out := string(outBytes)
	if err := cmp.Or(err, readErr); err != nil {
		return "", 0, fmt.Errorf("%s: %w: %s", strings.Join(all, " "), err, tail(out))
	}
	st := cmd.ProcessState
	return out, (st.UserTime() + st.SystemTime()).Seconds() / elapsed.Seconds(), nil
}

// clockTicks is the unit of /proc/<pid>/stat's times (USER_HZ, 100 on
// Linux on every architecture Go supports).
const clockTicks = 100

// cpuTicks is the user + system time of every thread of pid so far, in
// clock ticks, or -1.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	// The command (field 2) may hold spaces: count from the last ')'.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return -1
	}
	return utime + stime
}

func tail(s string) string {
	if len(s) > 2000 {
		return s[len(s)-2000:]
	}
	return s
}

var (
	qpsRe  = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	lostRe = regexp.MustCompile(`Queries lost:\s+\d+ \(([0-9.]+)%\)`)
	rcRe   = regexp.MustCompile(`Response codes:\s+(.*)`)
)

func parseSummary(out string) (qps, lost float64, err error) {
	m := qpsRe.FindStringSubmatch(out)
	if m == nil {
		return 0, 0, fmt.Errorf("no 'Queries per second' in dnsperf's output: %s", tail(out))
	}
	qps, _ = strconv.ParseFloat(m[1], 64)
	if m := lostRe.FindStringSubmatch(out); m != nil {
		lost, _ = strconv.ParseFloat(m[1], 64)
	}
	return qps, lost, nil
}

func parseRcodes(out string) string {
	if m := rcRe.FindStringSubmatch(out); m != nil {
		return strings.TrimSpace(m[1])
	}
	return "?"
}

// parseLatencies reads dnsperf -v's per-query lines, which end in the
// query's latency in seconds: "> NOERROR ctr0 A 0.000123".
func parseLatencies(out string) []time.Duration {
	var lat []time.Duration
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "> ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		lat = append(lat, time.Duration(v*float64(time.Second)))
	}
	return lat
}

func vmRSS(pid int) int { return procStatusKB(pid, "VmRSS") }

// procStatusKB reads one "<field>: <n> kB" line of /proc/<pid>/status.
func procStatusKB(pid int, field string) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				kb, _ := strconv.Atoi(f[0])
				return kb
			}
		}
	}
	return 0
}

// ask sends one A query for name to addr from the bench's client address.
func ask(addr netip.AddrPort, name string, timeout time.Duration) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: timeout}
	c.Dialer = newDialer(timeout)
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	resp, _, err := c.Exchange(m, addr.String())
	return resp, err
}

// askFrom asks addr from the host's own address on that network (the
// gateway: inside the network's subnet, so the daemon answers it).
func askFrom(addr netip.AddrPort, name string, timeout time.Duration) (*dns.Msg, error) {
	c := &dns.Client{Net: "udp", Timeout: timeout}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	resp, _, err := c.Exchange(m, addr.String())
	return resp, err
}

// waitAnswer waits (bounded: 5 s, 100 tries) until addr answers name.
func waitAnswer(ctx context.Context, addr netip.AddrPort, name string) error {
	var last error
	for range 100 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		resp, err := ask(addr, name, 50*time.Millisecond)
		if err == nil && resp.Rcode == dns.RcodeSuccess && len(resp.Answer) > 0 {
			return nil
		}
		last = err
		if err == nil {
			last = fmt.Errorf("answer %s", dns.RcodeToString[resp.Rcode])
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s does not answer %s: %v", addr, name, last)
}

// propagation is the time from swapping in a table with a new name to the
// first answer that has it, measured over UDP from the client address
// against a netdns in this process (bounded: 20 rounds, 1 s each). It
// returns the median and the worst.
func propagation(ctx context.Context, cl *cleanup, names []benchName) ([2]time.Duration, error) {
	s := netdns.New(netdns.Config{})
	cl.add(s.Close)
	s.SetTable(netdns.NewTable(endpoints(names)))
	addr, err := s.AddListener(netdns.Listener{Network: network, Addr: netip.AddrPortFrom(propAddr, 53)})
	if err != nil {
		return [2]time.Duration{}, err
	}
	var ds []time.Duration
	for i := range 20 {
		name := fmt.Sprintf("new%d", i)
		eps := endpoints(append(slices.Clip(names), benchName{name: name, ip: netip.MustParseAddr("10.254.253.1")}))
		t := netdns.NewTable(eps)
		start := time.Now()
		s.SetTable(t)
		ok := false
		for time.Since(start) < time.Second && ctx.Err() == nil {
			resp, err := ask(addr, name, 100*time.Millisecond)
			if err == nil && len(resp.Answer) > 0 {
				ok = true
				break
			}
		}
		if !ok {
			return [2]time.Duration{}, fmt.Errorf("%s not answered within 1s of the table swap", name)
		}
		ds = append(ds, time.Since(start))
	}
	slices.Sort(ds)
	return [2]time.Duration{ds[len(ds)/2], ds[len(ds)-1]}, nil
}

func printTable(w io.Writer, cfg config, rows []row, prop [2]time.Duration, df *daemonFigures) {
	fmt.Fprintf(w, "\nDNS: dnsperf -c %d -T %d -q %d, %d local names, peak: the median of %d runs of %s, latency at half the peak over %d×%s\n",
		cfg.clients, cfg.threads, cfg.outstanding, cfg.names, peakRuns, cfg.peakFor, cfg.halfRuns, cfg.halfFor)
	fmt.Fprintf(w, "CPUs: %s\n", cfg.placement())
	fmt.Fprintf(w, "%-14s %-10s %10s %6s %5s %5s %6s %10s %9s %9s %-19s %9s %10s %10s %-16s %8s  %s\n",
		"server", "workload", "peak q/s", "lost%", "srv", "cli", "µs/q", "half q/s", "p50", "p99", "(p99 of each run)", "max",
		"probe p50", "probe p99", "(of each run)", "RSS MB", "rcodes at peak")
	for _, r := range rows {
		rss := "-"
		if r.rssKB > 0 {
			rss = fmt.Sprintf("%.1f", float64(r.rssKB)/1024)
		}
		fmt.Fprintf(w, "%-14s %-10s %10.0f %6.2f %4.0f%% %4.0f%% %6s %10.0f %9s %9s %-19s %9s %10s %10s %-16s %8s  %s\n",
			r.server, r.workload, r.qps, r.lost, 100*r.serverCPU, 100*r.clientCPU, perQuery(r), r.halfQPS, us(r.p50), us(r.p99),
			microseconds(r.p99s), us(r.max), us(r.probeP50), us(r.probeP99), microseconds(r.probeP99s), rss, r.rcodes)
	}
	fmt.Fprintf(w, "stack netdns / aardvark-dns, peak q/s:%s\n", ratios(rows))
	fmt.Fprint(w, "peak q/s of each run:")
	for i, r := range rows {
		var runs []string
		for _, q := range r.peaks {
			runs = append(runs, fmt.Sprintf("%.0f", q))
		}
		sep := ";"
		if i == len(rows)-1 {
			sep = "\n"
		}
		fmt.Fprintf(w, " %s %s %s%s", r.server, r.workload, strings.Join(runs, " "), sep)
	}
	fmt.Fprintf(w, "stack netdns: a new name is answered %s after the table swap (median of 20; worst %s)\n", us(prop[0]), us(prop[1]))
	fmt.Fprintln(w, "RSS MB: VmRSS of each server's own process after its runs (stack netdns alone, not the whole daemon).")
	switch {
	case df == nil:
		fmt.Fprintln(w, "stack daemon: not measured (no -address containerd socket given)")
	default:
		event := "none recorded"
		if df.maxEvent > 0 {
			event = fmt.Sprintf("last %s, max %s", us(df.lastEvent), us(df.maxEvent))
		}
		answer := "not answered within 2s"
		if df.newAnswer > 0 {
			answer = us(df.newAnswer)
		}
		mb := func(kb int) float64 { return float64(kb) / 1024 }
		fmt.Fprintf(w, "stack daemon: %d containers up (%d names served): VmRSS %.1f MB as it serves them (anonymous %.1f, its binary's and libraries' pages %.1f), %.1f MB %s later (%.1f + %.1f)\n",
			df.containers, df.names, mb(df.rssKB), mb(df.anonKB), mb(df.fileKB), mb(df.steadyKB), settleFor, mb(df.steadyAnonKB), mb(df.steadyFileKB))
		fmt.Fprintf(w, "  one more service: answered at the gateway %s after its `up -d` returned; daemon's task event -> table swap: %s\n", answer, event)
		if len(df.after) > 0 {
			fmt.Fprintf(w, "  after that `up -d`, VmRSS each second for %s: median %.1f MB, max %.1f MB (target: under 25 MB)\n",
				watchFor, mb(medianInt(df.after)), mb(slices.Max(df.after)))
		}
	}
	fmt.Fprintln(w, "srv, cli: CPU used at the peak by the server (all its threads) and by dnsperf, in % of one CPU; µs/q: the server's CPU time per query at the peak.")
	fmt.Fprintf(w, "p50/p99/max: from dnsperf -v's per-query latencies in %d runs of %s at half the peak rate: the median run's p50 and p99 (each run's p99 in µs in brackets), the largest latency of all.\n", cfg.halfRuns, cfg.halfFor)
	fmt.Fprintf(w, "probe p50/p99: the same runs, from %d queries a second sent beside dnsperf's from its CPU, each reply stamped by the kernel (SO_TIMESTAMPNS) and not when a thread reads it: the server's response time without dnsperf's receiving thread's wait for its CPU (median run's; each run's p99 in brackets).\n", probeRate)
	for _, r := range rows {
		if r.probeLost > 0 {
			fmt.Fprintf(w, "  %s %s: the probe got no answer to %d of %d queries\n", r.server, r.workload, r.probeLost, r.probeLost+r.probeSamples)
		}
	}
}

// medianInt is the middle of xs (the upper one of an even count).
func medianInt(xs []int) int {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// perQuery is the server's CPU time per query at the peak, in µs.
func perQuery(r row) string {
	if r.qps <= 0 || r.serverCPU <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f", r.serverCPU/r.qps*1e6)
}

// microseconds lists durations in µs in brackets: "(512 604 1290)".
func microseconds(ds []time.Duration) string {
	var each []string
	for _, d := range ds {
		each = append(each, fmt.Sprintf("%.0f", float64(d)/float64(time.Microsecond)))
	}
	return "(" + strings.Join(each, " ") + ")"
}

func us(d time.Duration) string {
	return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
}

// ratios is netdns's peak over aardvark-dns's for each workload.
func ratios(rows []row) string {
	peak := map[[2]string]float64{}
	for _, r := range rows {
		peak[[2]string{r.server, r.workload}] = r.qps
	}
	var b strings.Builder
	for _, w := range workloads {
		if a := peak[[2]string{"aardvark-dns", w}]; a > 0 {
			fmt.Fprintf(&b, " %s %.2f×", w, peak[[2]string{"stack netdns", w}]/a)
		}
	}
	return b.String()
}
