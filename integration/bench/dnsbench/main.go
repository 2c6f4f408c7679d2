// Command dnsbench measures stack's DNS server (netdns) with dnsperf next to
// aardvark-dns and dnsmasq serving the same names on the same machine in the
// same run: local names, names forwarded to an upstream on loopback, and a
// mix. It creates a test bridge for the servers' addresses and removes it,
// and every process it started, at the end. `make bench` runs it as root.
//
//	go run ./integration/bench/dnsbench -names 100 -l 5
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

type config struct {
	names       int           // local names per server
	peakFor     time.Duration // dnsperf -l for the peak run
	halfFor     time.Duration // dnsperf -l for the latency run at half the peak
	halfRuns    int           // latency runs at half the peak, whose medians are shown
	clients     int           // dnsperf -c
	threads     int           // dnsperf -T
	outstanding int           // dnsperf -q
	dir         string        // scratch directory
	// pin puts dnsperf (and the upstream) on clientCPU and the server under
	// test on serverCPU, as a second machine would (see pinning).
	pin                  bool
	clientCPU, serverCPU int
	nice                 int // of every process measured, when pinned
	idleLatency          int // µs held as the CPUs' idle exit limit during the runs; -1: not held
	workloads            []string
	// For the daemon's figures (left out when address is empty).
	address, stack, images string
	daemonN                int
}

func main() {
	var cfg config
	flag.IntVar(&cfg.names, "names", 100, "local names (containers) per server, 1..200")
	flag.DurationVar(&cfg.peakFor, "l", 5*time.Second, "length of each peak run (at most 10s)")
	flag.DurationVar(&cfg.halfFor, "half", 3*time.Second, "length of each half-rate latency run (at most 10s)")
	flag.IntVar(&cfg.halfRuns, "half-runs", 3, "half-rate latency runs per server and workload (the table shows their medians), 1..5")
	flag.IntVar(&cfg.clients, "c", 8, "dnsperf clients")
	flag.IntVar(&cfg.outstanding, "q", 500, "dnsperf's queries outstanding at most")
	flag.IntVar(&cfg.threads, "T", 0, "dnsperf threads (0: 1 when pinned, 2 when not)")
	flag.IntVar(&cfg.nice, "nice", -10, "when pinned: the nice value of dnsperf, the upstream and every server (0: as the bench's own)")
	flag.IntVar(&cfg.idleLatency, "idle-latency", 0, "hold every CPU's idle exit under this many µs during the runs, as cyclictest does (-1: leave the CPUs' idle states as they are)")
	flag.BoolVar(&cfg.pin, "pin", true, "pin dnsperf and the upstream to one CPU and the server under test to another (false: all share every CPU)")
	flag.StringVar(&cfg.address, "address", os.Getenv("STACK_TEST_CONTAINERD"), "containerd socket for the daemon's memory with -daemon-n containers (empty: left out)")
	flag.StringVar(&cfg.stack, "stack", "bin/stack", "stack binary")
	flag.StringVar(&cfg.images, "images", "examples/images/out", "directory with busybox.oci.tar")
	only := flag.String("workloads", strings.Join(workloads, ","), "the workloads to run, of "+strings.Join(workloads, ","))
	flag.IntVar(&cfg.daemonN, "daemon-n", 100, "containers up while the daemon's memory is read")
	serve := flag.Bool("serve-stack", false, "internal: serve netdns with -names names until SIGTERM (the bench runs itself so)")
	var pf probeFlags
	flag.StringVar(&pf.server, "probe", "", "internal: be the latency probe against this server address (the bench runs itself so)")
	flag.StringVar(&pf.file, "probe-file", "", "internal: the probe's dnsperf data file")
	flag.IntVar(&pf.rate, "probe-rate", probeRate, "internal: the probe's queries a second")
	flag.DurationVar(&pf.length, "probe-for", time.Second, "internal: how long the probe sends")
	flag.Parse()
	if pf.server != "" {
		if err := runProbe(pf); err != nil {
			fmt.Fprintln(os.Stderr, "dnsbench -probe:", err)
			os.Exit(1)
		}
		return
	}
	if *serve {
		if err := serveStack(cfg.names); err != nil {
			fmt.Fprintln(os.Stderr, "dnsbench -serve-stack:", err)
			os.Exit(1)
		}
		return
	}
	if cfg.names < 1 || cfg.names > 200 || cfg.peakFor < time.Second || cfg.peakFor > 10*time.Second ||
		cfg.halfFor < time.Second || cfg.halfFor > 10*time.Second || cfg.clients < 1 || cfg.clients > 64 ||
		cfg.threads < 0 || cfg.threads > 8 || cfg.nice < -20 || cfg.nice > 19 || cfg.halfRuns < 1 || cfg.halfRuns > 5 ||
		cfg.outstanding < 1 || cfg.outstanding > 10000 || cfg.idleLatency < -1 || cfg.idleLatency > 1000000 {
		fmt.Fprintln(os.Stderr, "dnsbench: -names 1..200, -l and -half 1s..10s, -half-runs 1..5, -c 1..64, -T 0..8, -q 1..10000, -nice -20..19, -idle-latency -1..1000000")
		os.Exit(2)
	}
	cfg.pinning()
	if err := cfg.only(*only); err != nil {
		fmt.Fprintln(os.Stderr, "dnsbench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	for _, p := range []*string{&cfg.stack, &cfg.images} {
		if abs, err := filepath.Abs(*p); err == nil {
			*p = abs
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	if err := run(ctx, cfg); err != nil {
		cancel()
		fmt.Fprintln(os.Stderr, "dnsbench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) (err error) {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root: the bench creates a test bridge")
	}
	for _, bin := range []string{"dnsperf", "dnsmasq", aardvarkBin, "ip", "unshare", "taskset"} {
		if _, err := lookPath(bin); err != nil {
			return fmt.Errorf("%s not found: install dnsperf, dnsmasq-base, aardvark-dns and iproute2 (make bench does): %w", bin, err)
		}
	}
	dir, err := os.MkdirTemp(scratchRoot(), "dnsbench.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cfg.dir = dir
	var cl cleanup
	defer cl.run()

	if err := setupBridge(ctx, &cl); err != nil {
		return err
	}
	if err := startUpstream(ctx, &cl, cfg); err != nil {
		return err
	}
	loadBefore := loadAvg()
	names := benchNames(cfg.names)
	servers, err := startServers(ctx, &cl, cfg, names)
	if err != nil {
		return err
	}
	files, err := writeQueryFiles(cfg.dir, names)
	if err != nil {
		return err
	}
	var rows []row
	for _, s := range servers {
		for _, w := range cfg.workloads {
			fmt.Fprintf(os.Stderr, "dnsbench: %s %s\n", s.name, w)
			r, err := measure(ctx, cfg, s, w, files[w])
			if err != nil {
				return fmt.Errorf("%s %s: %w", s.name, w, err)
			}
			rows = append(rows, r)
		}
	}
	var shared []row
	if cfg.pin && slices.Contains(cfg.workloads, "local") {
		if shared, err = measureShared(ctx, cfg, servers, files["local"]); err != nil {
			return fmt.Errorf("every CPU shared: %w", err)
		}
	}
	prop, err := propagation(ctx, &cl, names)
	if err != nil {
		return fmt.Errorf("propagation: %w", err)
	}
	var df *daemonFigures
	if cfg.address != "" {
		fmt.Fprintf(os.Stderr, "dnsbench: stack daemon with %d containers\n", cfg.daemonN)
		f, err := measureDaemon(ctx, cfg, cfg.daemonN)
		if err != nil {
			return fmt.Errorf("daemon with %d containers: %w", cfg.daemonN, err)
		}
		df = &f
	}
	printTable(os.Stdout, cfg, rows, prop, df)
	printShared(os.Stdout, shared)
	fmt.Fprintf(os.Stdout, "load average (1 5 15 min) before the runs: %s, after: %s (on %d CPUs; %s)\n",
		loadBefore, loadAvg(), runtime.NumCPU(), cfg.placement())
	return nil
}

// scratchRoot is where the bench's files go: memory when the host has a
// tmpfs at /dev/shm. dnsperf -v writes a line per query, from the thread
// that stamps the replies; on this VM's ext4 /tmp a write now and then
// waited on the journal for milliseconds, and the replies behind it were
// stamped that late (dnsmasq's p99 at 35k queries a second: 1.8 ms with the
// report on /tmp, 1.0–1.1 ms on /dev/shm, in alternating runs).
func scratchRoot() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return ""
}

// only sets the workloads to run from a comma-separated list.
func (c *config) only(list string) error {
	c.workloads = nil
	for _, w := range strings.Split(list, ",") {
		if !slices.Contains(workloads, w) {
			return fmt.Errorf("-workloads: no workload %q (there are %s)", w, strings.Join(workloads, ", "))
		}
		c.workloads = append(c.workloads, w)
	}
	return nil
}

// pinning decides where the load generator and the servers run.
//
// dnsperf's documentation asks for the load generator on a machine of its
// own: on one machine it takes CPU from the server it measures, and how
// much depends on the scheduler, so the figures are dominated by noise and
// the server's own efficiency is hidden. With two or more CPUs the closest
// standard setup is to pin dnsperf to one CPU and the server under test to
// another, each server in turn the same way (stack's netdns process,
// aardvark-dns, dnsmasq: every process and thread of it, as affinity is
// inherited). The upstream that forwarded names go to stands for a
// resolver on another machine: it shares the load generator's CPU, so that
// the server's CPU runs nothing but the server under test. Each server
// then sees one CPU (Go's GOMAXPROCS, tokio's worker count and dnsmasq's
// single thread all follow the affinity), and dnsperf runs one thread
// (-T 1) on its CPU. The table shows each side's CPU use at the peak: a
// client near 100% with a server below it means the client was the limit.
// Other processes on the host are not pinned and may run on either CPU,
// as no CPU can be set aside without a reboot (isolcpus): the client and
// every server alike run at a higher priority (-nice, -10 by default)
// so that a compile or another benchmark on the host delays them less,
// which is what the tail latencies would otherwise measure. The load
// average is printed with the figures.
func (c *config) pinning() {
	if c.pin && runtime.NumCPU() < 2 {
		c.pin = false
	}
	if !c.pin {
		c.nice = 0
	}
	if c.pin {
		c.clientCPU, c.serverCPU = 0, 1
	}
	if c.threads == 0 {
		c.threads = 2
		if c.pin {
			c.threads = 1
		}
	}
}

// onCPU prefixes args with taskset when the bench pins, so the process and
// all it starts run on cpu only.
func (c *config) onCPU(cpu int, args ...string) []string {
	if !c.pin {
		return args
	}
	if c.nice != 0 {
		args = append([]string{"nice", "-n", strconv.Itoa(c.nice)}, args...)
	}
	return append([]string{"taskset", "-c", strconv.Itoa(cpu)}, args...)
}

// placement says where things ran, for the table.
func (c *config) placement() string {
	where := "dnsperf, the upstream and the server under test share every CPU (-pin=false)"
	if c.pin {
		where = fmt.Sprintf("dnsperf and the upstream pinned to CPU %d, the server under test to CPU %d, all at nice %d", c.clientCPU, c.serverCPU, c.nice)
	}
	return where + "; " + c.idleHeld()
}

// idleHeld says how the CPUs idled during the runs, for the table.
func (c *config) idleHeld() string {
	if c.idleLatency < 0 {
		return "CPU idle states as the host has them (" + idleStates() + ")"
	}
	return fmt.Sprintf("in the latency runs, CPU idle exits held under %dµs (%s; idle states %s)", c.idleLatency, cpuIdleLatency, idleStates())
}

// loadAvg is the host's load average, which the figures depend on.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
