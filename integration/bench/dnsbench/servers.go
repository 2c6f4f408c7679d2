package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stackdev/stack/netdns"
)

const (
	bridge      = "sbdnsbench0"
	aardvarkBin = "/usr/lib/podman/aardvark-dns"
	network     = "bench"
	fwdDomain   = "fwd.test"
	fwdAnswer   = "10.9.9.9"
)

// The addresses on the test bridge: one per server, one for dnsperf (it is
// a "container" in every server's records, as aardvark-dns answers only
// the containers it knows), and the names' addresses after them.
var (
	stackAddr    = netip.MustParseAddr("10.254.251.1")
	aardvarkAddr = netip.MustParseAddr("10.254.251.2")
	dnsmasqAddr  = netip.MustParseAddr("10.254.251.3")
	clientAddr   = netip.MustParseAddr("10.254.251.4")
	propAddr     = netip.MustParseAddr("10.254.251.5")      // the propagation measurement's netdns
	upstreamAddr = netip.MustParseAddrPort("127.0.0.77:53") // loopback only
)

// server is one DNS server under test.
type server struct {
	name string
	addr netip.Addr
	pid  int // whose VmRSS is shown
}

// cleanup runs its steps in reverse order, once, also on failure.
type cleanup struct{ steps []func() }

func (c *cleanup) add(f func()) { c.steps = append(c.steps, f) }

func (c *cleanup) run() {
	for i := len(c.steps) - 1; i >= 0; i-- {
		c.steps[i]()
	}
	c.steps = nil
}

func lookPath(bin string) (string, error) { return exec.LookPath(bin) }

func sh(ctx context.Context, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// setupBridge creates the test bridge with every address the bench uses.
func setupBridge(ctx context.Context, cl *cleanup) error {
	_ = sh(ctx, "ip", "link", "del", bridge) // left over by a killed run
	if err := sh(ctx, "ip", "link", "add", bridge, "type", "bridge"); err != nil {
		return err
	}
	cl.add(func() { _ = sh(context.Background(), "ip", "link", "del", bridge) })
	for _, a := range []netip.Addr{stackAddr, aardvarkAddr, dnsmasqAddr, clientAddr, propAddr} {
		if err := sh(ctx, "ip", "addr", "add", a.String()+"/24", "dev", bridge); err != nil {
			return err
		}
	}
	return sh(ctx, "ip", "link", "set", bridge, "up")
}

// benchNames are the local names: one container each, with its address.
type benchName struct {
	name string
	ip   netip.Addr
}

func benchNames(n int) []benchName {
	out := make([]benchName, n)
	for i := range out {
		out[i] = benchName{name: fmt.Sprintf("ctr%d", i), ip: netip.AddrFrom4([4]byte{10, 254, 252, byte(i + 1)})}
	}
	return out
}

// startProc starts a process that is stopped (SIGTERM, then SIGKILL) by cl.
func startProc(cl *cleanup, logPath string, args ...string) (*exec.Cmd, error) {
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", args[0], err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(done) }()
	cl.add(func() { stopProc(cmd.Process.Pid, done) })
	return cmd, nil
}

func stopProc(pid int, done <-chan struct{}) {
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		_ = syscall.Kill(pid, syscall.SIGKILL)
		<-done
	}
}

// startUpstream runs the forwarded names' upstream: dnsmasq on a loopback
// address, answering every *.fwd.test with one address and nothing else.
func startUpstream(ctx context.Context, cl *cleanup, cfg config) error {
	_, err := startProc(cl, filepath.Join(cfg.dir, "upstream.log"), cfg.onCPU(cfg.clientCPU, "dnsmasq", "-k", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address="+upstreamAddr.Addr().String(),
		"--port="+strconv.Itoa(int(upstreamAddr.Port())),
		"--address=/"+fwdDomain+"/"+fwdAnswer, "--user=root", "--pid-file=")...)
	if err != nil {
		return err
	}
	return waitAnswer(ctx, upstreamAddr, "a."+fwdDomain)
}

// startServers starts stack's netdns (in this process), aardvark-dns and
// dnsmasq, each on its own bridge address and port 53, with the same names
// and the same upstream, and waits until each answers.
func startServers(ctx context.Context, cl *cleanup, cfg config, names []benchName) ([]*server, error) {
	st, err := startStack(cl, cfg)
	if err != nil {
		return nil, err
	}
	aa, err := startAardvark(ctx, cl, cfg, names)
	if err != nil {
		return nil, err
	}
	dm, err := startDnsmasq(cl, cfg, names)
	if err != nil {
		return nil, err
	}
	servers := []*server{st, aa, dm}
	for _, s := range servers {
		if err := waitAnswer(ctx, netip.AddrPortFrom(s.addr, 53), names[0].name); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return servers, nil
}

func endpoints(names []benchName) []netdns.Endpoint {
	eps := []netdns.Endpoint{{Network: network, IP: clientAddr, Container: "dnsperf", Running: true}}
	for _, n := range names {
		eps = append(eps, netdns.Endpoint{Network: network, IP: n.ip, Container: n.name, Running: true})
	}
	return eps
}

// startStack runs netdns in a process of its own (this program again, with
// -serve-stack), so that its VmRSS is netdns's alone.
func startStack(cl *cleanup, cfg config) (*server, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd, err := startProc(cl, filepath.Join(cfg.dir, "stack.log"), cfg.onCPU(cfg.serverCPU, self, "-serve-stack", "-names", strconv.Itoa(cfg.names))...)
	if err != nil {
		return nil, err
	}
	return &server{name: "stack netdns", addr: stackAddr, pid: cmd.Process.Pid}, nil
}

// serveStack is the -serve-stack process: netdns with the bench's names on
// the stack address, forwarding to the bench's upstream, until SIGTERM.
func serveStack(n int) error {
	s := netdns.New(netdns.Config{Upstreams: []netip.AddrPort{upstreamAddr}})
	defer s.Close()
	s.SetTable(netdns.NewTable(endpoints(benchNames(n))))
	if _, err := s.AddListener(netdns.Listener{Network: network, Addr: netip.AddrPortFrom(stackAddr, 53)}); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute) // bounded even if the bench is gone
	defer cancel()
	<-ctx.Done()
	return nil
}

// startAardvark writes a netavark-style config directory and runs
// aardvark-dns in a mount namespace of its own where /etc/resolv.conf names
// the bench's upstream only (aardvark-dns 1.4 forwards to resolv.conf's
// servers): the host's resolver is never asked.
func startAardvark(ctx context.Context, cl *cleanup, cfg config, names []benchName) (*server, error) {
	confDir := filepath.Join(cfg.dir, "aardvark")
	if err := os.MkdirAll(confDir, 0o755); err != nil {
		return nil, err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", aardvarkAddr, upstreamAddr.Addr())
	fmt.Fprintf(&b, "%064x %s  dnsperf\n", 1, clientAddr)
	for i, n := range names {
		fmt.Fprintf(&b, "%064x %s  %s\n", i+2, n.ip, n.name)
	}
	if err := os.WriteFile(filepath.Join(confDir, network), []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	resolv := filepath.Join(cfg.dir, "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver "+upstreamAddr.Addr().String()+"\n"), 0o644); err != nil {
		return nil, err
	}
	pidFile := filepath.Join(confDir, "aardvark.pid")
	script := fmt.Sprintf("mount --make-rprivate / && mount --bind %s /etc/resolv.conf && exec %s --config %s -p 53 run",
		resolv, aardvarkBin, confDir)
	cmd, err := startProc(cl, filepath.Join(cfg.dir, "aardvark.log"), cfg.onCPU(cfg.serverCPU, "unshare", "-m", "sh", "-c", script)...)
	if err != nil {
		return nil, err
	}
	// aardvark-dns may fork into the background: stop the child too.
	cl.add(func() { killPidFile(pidFile) })
	pid := cmd.Process.Pid
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if p, ok := readPid(pidFile); ok {
			pid = p
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &server{name: "aardvark-dns", addr: aardvarkAddr, pid: pid}, nil
}

func readPid(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return p, err == nil && p > 1
}

func killPidFile(path string) {
	p, ok := readPid(path)
	if !ok {
		return
	}
	// Only if it still is aardvark-dns (the pid may have been reused).
	if cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p)); err == nil && strings.Contains(string(cmdline), "aardvark-dns") {
		_ = syscall.Kill(p, syscall.SIGKILL)
	}
}

// startDnsmasq serves the names from a hosts file and forwards the rest to
// the bench's upstream.
func startDnsmasq(cl *cleanup, cfg config, names []benchName) (*server, error) {
	hosts := filepath.Join(cfg.dir, "dnsmasq.hosts")
	var b strings.Builder
	fmt.Fprintf(&b, "%s dnsperf\n", clientAddr)
	for _, n := range names {
		fmt.Fprintf(&b, "%s %s\n", n.ip, n.name)
	}
	if err := os.WriteFile(hosts, []byte(b.String()), 0o644); err != nil {
		return nil, err
	}
	cmd, err := startProc(cl, filepath.Join(cfg.dir, "dnsmasq.log"), cfg.onCPU(cfg.serverCPU, "dnsmasq", "-k", "--conf-file=/dev/null",
		"--no-resolv", "--no-hosts", "--addn-hosts="+hosts, "--bind-interfaces",
		"--listen-address="+dnsmasqAddr.String(), "--port=53", "--server="+upstreamAddr.Addr().String(),
		"--user=root", "--pid-file=")...)
	if err != nil {
		return nil, err
	}
	return &server{name: "dnsmasq", addr: dnsmasqAddr, pid: cmd.Process.Pid}, nil
}
