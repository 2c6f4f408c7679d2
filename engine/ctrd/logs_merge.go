package ctrd

import (
	"container/heap"
	"errors"
	"io"
)

// MergeLogs reads every reader until io.EOF and calls emit with the entries
// of all of them in time order (ties keep the readers' order), reading one
// entry ahead per reader. With followed readers, call it again later to get
// what was written since.
func MergeLogs(readers []*LogReader, emit func(i int, e LogEntry) error) error {
	h := &logHeap{}
	for i, r := range readers {
		if err := h.pull(i, r); err != nil {
			return err
		}
	}
	for h.Len() > 0 {
		top := heap.Pop(h).(heapItem)
		if err := emit(top.i, top.e); err != nil {
			return err
		}
		if err := h.pull(top.i, readers[top.i]); err != nil {
			return err
		}
	}
	return nil
}

type heapItem struct {
	i int
	e LogEntry
}

type logHeap []heapItem

// pull pushes reader i's next entry, if it has one now.
func (h *logHeap) pull(i int, r *LogReader) error {
	e, err := r.Next()
	if errors.Is(err, io.EOF) {
		return nil
	} else if err != nil {
		return err
	}
	heap.Push(h, heapItem{i: i, e: e})
	return nil
}

func (h logHeap) Len() int { return len(h) }
func (h logHeap) Less(a, b int) bool {
	if !h[a].e.Time.Equal(h[b].e.Time) {
		return h[a].e.Time.Before(h[b].e.Time)
	}
	return h[a].i < h[b].i
}
func (h logHeap) Swap(a, b int) { h[a], h[b] = h[b], h[a] }
func (h *logHeap) Push(x any)   { *h = append(*h, x.(heapItem)) }
func (h *logHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
