package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// sample is one operation's durations over the runs.
type sample []time.Duration

func (s sample) median() time.Duration { return medianOf(s) }

// medianOf is the middle value of s, or the mean of the two middle ones.
func medianOf[E ~int64 | ~float64](s []E) E {
	if len(s) == 0 {
		return 0
	}
	c := slices.Clone(s)
	slices.Sort(c)
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

func (s sample) spread() string {
	if len(s) == 0 {
		return ""
	}
	return fmt.Sprintf("%s–%s", short(slices.Min(s)), short(slices.Max(s)))
}

func short(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	default:
		return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
	}
}

type row struct {
	n      int
	op     string
	stack  sample
	floor  sample // empty when the operation has no floor
	target string
}

// stackSamples are the operations measured through the stack binary.
type stackSamples struct {
	coldUp, noopUp, changeOne, ps, down sample
}

// floorSamples are the same operations straight through containerd.
type floorSamples struct {
	createStart, stopRemove, oneCreateStart, oneStopRemove sample
}

func tableRows(n int, s stackSamples, f floorSamples) []row {
	one := make(sample, 0, len(f.oneCreateStart))
	for i := range f.oneCreateStart {
		one = append(one, f.oneCreateStart[i]+f.oneStopRemove[i])
	}
	return []row{
		{n, "cold up -d", s.coldUp, f.createStart, "≤1.3× floor"},
		{n, "no-op up -d", s.noopUp, nil, "<30ms at N=30"},
		{n, "up -d, one env changed", s.changeOne, one, "≤1.5× floor"},
		{n, "ps", s.ps, nil, "<30ms"},
		{n, "down", s.down, f.stopRemove, "≤1.3× floor"},
	}
}

func printTable(w io.Writer, rows []row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "N\toperation\tstack median\tspread\tfloor median\tratio\ttarget\t")
	for _, r := range rows {
		floor, ratio := "–", "–"
		if len(r.floor) > 0 {
			floor = short(r.floor.median())
			ratio = fmt.Sprintf("%.2f×", float64(r.stack.median())/float64(r.floor.median()))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t\n", r.n, r.op, short(r.stack.median()), r.stack.spread(), floor, ratio, r.target)
	}
	tw.Flush()
}
