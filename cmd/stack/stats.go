package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
)

func init() { registerCommand(newStatsCommand) }

type statsFlags struct {
	noStream bool
	format   string
	noTrunc  bool
	all      bool
}

// statsInterval is how often figures refresh, as docker's one second.
const statsInterval = time.Second

func newStatsCommand(a *app) *cobra.Command {
	var f statsFlags
	cmd := &cobra.Command{
		Use:   "stats [OPTIONS] [SERVICE...]",
		Short: "Display a live stream of container(s) resource usage statistics",
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.format != "" && f.format != "table" && f.format != "json" {
				return fmt.Errorf("unknown --format %q: use table or json", f.format)
			}
			return a.runStats(cmd.Context(), f, args)
		},
	}
	fs := cmd.Flags()
	fs.BoolVar(&f.noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	fs.StringVar(&f.format, "format", "table", "Format output: table or json (JSON Lines)")
	fs.BoolVar(&f.noTrunc, "no-trunc", false, "Do not truncate output")
	fs.BoolVarP(&f.all, "all", "a", false, "Show all containers (default shows just running)")
	return cmd
}

// statsRow is one container's figures, with docker's field names for
// --format json.
type statsRow struct {
	BlockIO   string `json:"BlockIO"`
	CPUPerc   string `json:"CPUPerc"`
	Container string `json:"Container"`
	ID        string `json:"ID"`
	MemPerc   string `json:"MemPerc"`
	MemUsage  string `json:"MemUsage"`
	Name      string `json:"Name"`
	NetIO     string `json:"NetIO"`
	PIDs      string `json:"PIDs"`
}

func (a *app) runStats(ctx context.Context, f statsFlags, services []string) error {
	project, c, err := a.projectClient(ctx, services)
	if err != nil {
		return err
	}
	defer c.Close()
	keep := func(ctr engine.Container) bool { return f.all || isLive(ctr) }
	tty := !f.noStream && f.format != "json" && isTTY(a.stdout)
	prev := map[string]ctrd.StatsSample{}
	for first := true; ; first = false {
		ctrs, err := a.selectContainers(ctx, c, project, services, false, keep)
		if err != nil {
			return err
		}
		cur := sampleAll(ctx, c, ctrs)
		if first {
			// CPU % needs two samples: the first one is only a baseline.
			prev = cur
			if !statsSleep(ctx, statsInterval) {
				return nil
			}
			continue
		}
		rows := statsRows(ctrs, prev, cur, f.noTrunc)
		if tty {
			fmt.Fprint(a.stdout, "\033[2J\033[H") // clear, cursor home: redraw in place
		}
		if err := renderStats(a.stdout, rows, f.format); err != nil {
			return err
		}
		if f.noStream {
			return nil
		}
		prev = cur
		if !statsSleep(ctx, statsInterval) {
			return nil // Ctrl-C ends the stream
		}
	}
}

// sampleAll reads every live container; one that stopped meanwhile is
// left out of the map and shows zeros.
func sampleAll(ctx context.Context, c *ctrd.Client, ctrs []engine.Container) map[string]ctrd.StatsSample {
	out := map[string]ctrd.StatsSample{}
	for _, ctr := range ctrs {
		if !isLive(ctr) {
			continue
		}
		s, err := c.ContainerStats(ctx, ctr.ID)
		if err != nil && !errors.Is(err, ctrd.ErrNotRunning) {
			continue
		}
		if err == nil {
			out[ctr.ID] = s
		}
	}
	return out
}

func statsRows(ctrs []engine.Container, prev, cur map[string]ctrd.StatsSample, noTrunc bool) []statsRow {
	var rows []statsRow
	for _, ctr := range ctrs {
		id := ctr.ID
		if !noTrunc && len(id) > 12 {
			id = id[:12]
		}
		fig := ctrd.ComputeStats(prev[ctr.ID], cur[ctr.ID])
		rows = append(rows, formatStats(ctr, id, fig))
	}
	return rows
}

// formatStats writes the figures as docker does: memory in binary units,
// network and block I/O in decimal units with three significant digits.
func formatStats(ctr engine.Container, id string, f ctrd.StatsFigures) statsRow {
	return statsRow{
		BlockIO:   units.HumanSizeWithPrecision(float64(f.BlockRead), 3) + " / " + units.HumanSizeWithPrecision(float64(f.BlockWrite), 3),
		CPUPerc:   fmt.Sprintf("%.2f%%", f.CPUPercent),
		Container: ctr.ID,
		ID:        id,
		MemPerc:   fmt.Sprintf("%.2f%%", f.MemPercent),
		MemUsage:  units.BytesSize(float64(f.MemUsage)) + " / " + units.BytesSize(float64(f.MemLimit)),
		Name:      ctr.Name,
		NetIO:     units.HumanSizeWithPrecision(float64(f.NetRx), 3) + " / " + units.HumanSizeWithPrecision(float64(f.NetTx), 3),
		PIDs:      fmt.Sprint(f.PIDs),
	}
}

func renderStats(w io.Writer, rows []statsRow, format string) error {
	if format == "json" {
		enc := json.NewEncoder(w)
		for _, r := range rows {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join([]string{"CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS"}, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join([]string{r.ID, r.Name, r.CPUPerc, r.MemUsage, r.MemPerc, r.NetIO, r.BlockIO, r.PIDs}, "\t"))
	}
	return tw.Flush()
}

// statsSleep waits d; false when ctx ended first.
func statsSleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
