package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The pinned peak of local names is the load generator's: dnsperf, alone
// on its CPU, is at 96–99% for every server, and each server's own CPU has
// room left. What it compares is how much of dnsperf's CPU each server's
// way of answering costs (a server that sleeps between queries is woken
// by each send). The shared-CPU pass measures the same peak the way a
// host runs a DNS server beside its clients: dnsperf (two threads) and
// the server under test on every CPU at the same priority, so that what
// each query costs both sides decides the rate.

// measureShared runs peakRuns peak runs of local names against each server
// with the pinning lifted: the server's threads get every CPU and nice 0,
// dnsperf runs unpinned with two threads; the server is put back on its
// CPU and priority after.
func measureShared(ctx context.Context, cfg config, servers []*server, file string) ([]row, error) {
	shared := cfg
	shared.pin, shared.nice, shared.threads = false, 0, 2
	var rows []row
	for _, s := range servers {
		fmt.Fprintf(os.Stderr, "dnsbench: %s local, every CPU shared\n", s.name)
		if err := placeThreads(s.pid, allCPUs(), 0); err != nil {
			return nil, fmt.Errorf("%s: unpin: %w", s.name, err)
		}
		r, err := peak(ctx, shared, s, "local", file, dnsperfCommon(shared))
		if err != nil {
			return nil, err
		}
		if err := placeThreads(s.pid, []int{cfg.serverCPU}, cfg.nice); err != nil {
			return nil, fmt.Errorf("%s: pin again: %w", s.name, err)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func allCPUs() []int {
	cpus := make([]int, runtime.NumCPU())
	for i := range cpus {
		cpus[i] = i
	}
	return cpus
}

// placeThreads sets the CPUs and nice value of every thread of pid
// (affinity and priority are per thread on Linux).
func placeThreads(pid int, cpus []int, nice int) error {
	tasks, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "task"))
	if err != nil {
		return err
	}
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil {
			return fmt.Errorf("thread %d: %w", tid, err)
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil {
			return fmt.Errorf("thread %d: %w", tid, err)
		}
	}
	return nil
}

func printShared(w io.Writer, rows []row) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(w, "\nlocal names with every CPU shared (dnsperf -T 2 and the server under test on both CPUs, nice 0, no idle-exit hold), peak: the median of 3 runs:")
	fmt.Fprintf(w, "%-14s %10s %6s %5s %5s %6s  %s\n", "server", "peak q/s", "lost%", "srv", "cli", "µs/q", "peak q/s of each run")
	for _, r := range rows {
		var each []string
		for _, q := range r.peaks {
			each = append(each, fmt.Sprintf("%.0f", q))
		}
		fmt.Fprintf(w, "%-14s %10.0f %6.2f %4.0f%% %4.0f%% %6s  %s\n", r.server, r.qps, r.lost, 100*r.serverCPU, 100*r.clientCPU, perQuery(r), strings.Join(each, " "))
	}
	fmt.Fprintf(w, "stack netdns / aardvark-dns, peak q/s with every CPU shared:%s\n", ratios(rows))
}
