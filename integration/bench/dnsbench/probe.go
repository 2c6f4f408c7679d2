package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/miekg/dns"
	"golang.org/x/sys/unix"
)

// The probe measures a server's response time apart from dnsperf's: a
// few queries a second, sent beside dnsperf's load at half the peak, each
// reply stamped by the kernel as it is queued on the probe's socket
// (SO_TIMESTAMPNS) rather than when a thread gets round to reading it.
//
// dnsperf stamps a reply when its receiving thread reads it. That thread
// shares its CPU with dnsperf's sending thread, and at half the peak the
// pair uses three quarters of that CPU, so a reply that waits for the
// receiver to be scheduled is counted as the server's time. On loopback the
// kernel's stamp is taken when the server's reply enters the network
// stack, so the probe's figure is the time from the query's send to the
// server's reply, what a capture on the wire would show. Every error the
// method has makes a latency longer, never shorter: the send is stamped
// in user space just before sendto.

// probeResult is one probe run's latencies, sorted, and the queries that
// got no answer.
type probeResult struct {
	latencies []time.Duration
	lost      int
}

// probeRate is the probe's queries a second: a few per cent of the half
// rate, added to dnsperf's.
const probeRate = 2000

// probeFlags are the internal flags of the probe's own process.
type probeFlags struct {
	server string
	file   string
	rate   int
	length time.Duration
}

// runProbe is the probe's process (dnsbench -probe): it sends rate queries
// a second for length to server from the client address, cycling through
// the names of a dnsperf data file, then prints each answered query's
// latency in nanoseconds, one a line, and "lost N".
func runProbe(f probeFlags) error {
	names, err := probeNames(f.file)
	if err != nil {
		return err
	}
	server, err := netip.ParseAddr(f.server)
	if err != nil {
		return err
	}
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: clientAddr.AsSlice()})
	if err != nil {
		return err
	}
	defer conn.Close()
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var optErr error
	if err := raw.Control(func(fd uintptr) {
		optErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_TIMESTAMPNS, 1)
	}); err != nil {
		return err
	}
	if optErr != nil {
		return fmt.Errorf("SO_TIMESTAMPNS: %w", optErr)
	}

	// A query's ID is its index, so at most 65536 queries a run.
	n := min(int(f.length.Seconds()*float64(f.rate)), 1<<16)
	sent := make([]int64, n)     // ns, CLOCK_REALTIME, as the kernel's stamps
	answered := make([]int64, n) // the reply's kernel stamp; 0: none
	done := make(chan error, 1)
	go func() { done <- readStamped(conn, answered) }()

	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(server, 53))
	q := new(dns.Msg)
	start := time.Now()
	for i := range n {
		if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(f.rate))); d > 0 {
			time.Sleep(d)
		}
		q.SetQuestion(names[i%len(names)], dns.TypeA)
		q.Id = uint16(i)
		wire, err := q.Pack()
		if err != nil {
			return err
		}
		var now unix.Timespec
		_ = unix.ClockGettime(unix.CLOCK_REALTIME, &now)
		sent[i] = now.Nano()
		if _, err := conn.WriteToUDP(wire, to); err != nil {
			return err
		}
	}
	// dnsperf's own timeout (-t 2) bounds how long an answer may take.
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	if err := <-done; err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	w := bufio.NewWriter(os.Stdout)
	lost := 0
	for i := range n {
		if answered[i] == 0 {
			lost++
			continue
		}
		fmt.Fprintln(w, answered[i]-sent[i])
	}
	fmt.Fprintf(w, "lost %d\n", lost)
	return w.Flush()
}

// readStamped reads replies until the connection's deadline, recording each
// one's kernel receive stamp by its ID.
func readStamped(conn *net.UDPConn, answered []int64) error {
	buf := make([]byte, 1500)
	oob := make([]byte, 128)
	for {
		n, oobn, _, _, err := conn.ReadMsgUDP(buf, oob)
		if err != nil {
			return err
		}
		if n < 2 {
			continue
		}
		id := int(binary.BigEndian.Uint16(buf))
		if id >= len(answered) {
			continue
		}
		if ts, ok := kernelStamp(oob[:oobn]); ok {
			answered[id] = ts
		}
	}
}

// kernelStamp finds the SO_TIMESTAMPNS stamp among a datagram's control
// messages, in ns.
func kernelStamp(oob []byte) (int64, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return 0, false
	}
	for _, m := range msgs {
		if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})) {
			ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			return ts.Nano(), true
		}
	}
	return 0, false
}

// probeNames reads the names of a dnsperf data file ("name TYPE" lines).
func probeNames(file string) ([]string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			names = append(names, dns.Fqdn(f[0]))
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: no names", file)
	}
	return names, nil
}

// probe runs the probe's process on the client CPU for d and returns its
// latencies.
func probe(ctx context.Context, cfg config, addr netip.Addr, file string, d time.Duration) (probeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, d+10*time.Second)
	defer cancel()
	self, err := os.Executable()
	if err != nil {
		return probeResult{}, err
	}
	args := cfg.onCPU(cfg.clientCPU, self, "-probe", addr.String(), "-probe-file", file,
		"-probe-rate", strconv.Itoa(probeRate), "-probe-for", d.String())
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return probeResult{}, fmt.Errorf("probe: %w: %s", err, tail(stderr.String()))
	}
	return parseProbe(string(out))
}

func parseProbe(out string) (probeResult, error) {
	var r probeResult
	sawLost := false
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if rest, ok := strings.CutPrefix(line, "lost "); ok {
			lost, err := strconv.Atoi(rest)
			if err != nil {
				return r, fmt.Errorf("probe: %q", line)
			}
			r.lost, sawLost = lost, true
			continue
		}
		ns, err := strconv.ParseInt(line, 10, 64)
		if err != nil {
			return r, fmt.Errorf("probe: %q", line)
		}
		r.latencies = append(r.latencies, time.Duration(ns))
	}
	if !sawLost || len(r.latencies) == 0 {
		return r, fmt.Errorf("probe answered nothing: %s", tail(out))
	}
	slices.Sort(r.latencies)
	return r, nil
}
