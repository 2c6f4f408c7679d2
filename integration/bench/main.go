// Command bench measures stack's converge operations against their floor:
// the same containers on the same kind of CNI network created, started,
// stopped and removed in parallel directly through the containerd client.
// It prints a table of medians and spreads, then the lifecycle figures
// (logs --tail on a 1 GiB log, logging throughput, healthcheck CPU; see
// lifecycle.go); `make bench` runs it.
//
//	go run ./integration/bench -address /tmp/ctd/containerd.sock -stack bin/stack -images examples/images/out
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

type config struct {
	address string
	stack   string
	images  string
	sizes   []int
	runs    int
	section string // all, converge or lifecycle
}

func main() {
	var cfg config
	var sizes string
	flag.StringVar(&cfg.address, "address", os.Getenv("STACK_TEST_CONTAINERD"), "containerd socket")
	flag.StringVar(&cfg.stack, "stack", "bin/stack", "stack binary")
	flag.StringVar(&cfg.images, "images", "examples/images/out", "directory with busybox.oci.tar")
	flag.StringVar(&sizes, "n", "1,10,30", "numbers of services")
	flag.IntVar(&cfg.runs, "runs", 5, "runs per size")
	flag.StringVar(&cfg.section, "section", "all", "what to measure: all, converge, lifecycle (logs and health), logs, or health")
	flag.Parse()
	for _, s := range strings.Split(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "bench: bad -n %q\n", s)
			os.Exit(2)
		}
		cfg.sizes = append(cfg.sizes, n)
	}
	for _, p := range []*string{&cfg.stack, &cfg.images} {
		if abs, err := filepath.Abs(*p); err == nil {
			*p = abs
		}
	}
	if cfg.address == "" {
		fmt.Fprintln(os.Stderr, "bench: -address (or STACK_TEST_CONTAINERD) is required")
		os.Exit(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config) error {
	switch cfg.section {
	case "all":
		if err := runConverge(ctx, cfg); err != nil {
			return err
		}
		return runLifecycle(ctx, cfg)
	case "converge":
		return runConverge(ctx, cfg)
	case "lifecycle", "logs", "health":
		return runLifecycle(ctx, cfg)
	}
	return fmt.Errorf("bad -section %q: use all, converge, lifecycle, logs or health", cfg.section)
}

func runConverge(ctx context.Context, cfg config) error {
	floor, err := newFloor(ctx, cfg)
	if err != nil {
		return err
	}
	defer floor.close()
	st, err := newStackRunner(cfg)
	if err != nil {
		return err
	}
	defer st.close()
	var rows []row
	for _, n := range cfg.sizes {
		fmt.Fprintf(os.Stderr, "bench: N=%d, %d runs\n", n, cfg.runs)
		// Floor and stack runs alternate, so that a change of the host's
		// load during the measurement reaches both sides alike.
		var fl floorSamples
		var sm stackSamples
		for range cfg.runs {
			if err := floor.measureOnce(ctx, n, &fl); err != nil {
				return fmt.Errorf("floor N=%d: %w", n, err)
			}
			if err := st.measureOnce(ctx, n, &sm); err != nil {
				return fmt.Errorf("stack N=%d: %w", n, err)
			}
		}
		rows = append(rows, tableRows(n, sm, fl)...)
	}
	printTable(os.Stdout, rows)
	return nil
}
