package reconcile

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"time"

	"github.com/stackdev/stack/engine"
)

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// Parallel bounds the engine calls in flight; <= 0 means 2 × cores.
	Parallel int
	// OnEvent receives every step's started, done, failed or skipped event.
	// Apply calls it from one goroutine, in order.
	OnEvent func(Event)
	// PullProgress receives layer progress; it is called from the pulling
	// goroutines, concurrently.
	PullProgress func(engine.PullProgress)
	// Wait gates a wait step: it returns when the containers ids meet
	// condition (service_healthy, service_completed_successfully). When nil,
	// a wait step only orders: it succeeds at once.
	Wait func(ctx context.Context, condition string, ids []string) error
	// Now is the clock for event times; time.Now when nil.
	Now func() time.Time
}

// EventStatus is where a step is.
type EventStatus string

const (
	EventStarted EventStatus = "started"
	EventDone    EventStatus = "done"
	EventFailed  EventStatus = "failed"
	EventSkipped EventStatus = "skipped" // a step it waits for failed, or the context ended
)

// Event reports one step's progress.
type Event struct {
	Step     Step
	Status   EventStatus
	At       time.Time
	Duration time.Duration // done and failed: how long the engine call took
	// ContainerID is the container the step acted on; for a create, the new
	// container's ID.
	ContainerID string
	Err         error
}

// ImageRemover is the optional engine capability `down --rmi` needs. It
// returns the image names it removed.
type ImageRemover interface {
	RemoveImage(ctx context.Context, ref string) ([]string, error)
}

// Apply executes plan: a step is launched once every step it waits for
// succeeded, at most opts.Parallel at a time. A failed step's dependents are
// skipped, independent branches run to the end, and the failures are joined.
func Apply(ctx context.Context, driver engine.Driver, plan Plan, opts ApplyOptions) error {
	if err := plan.Validate(); err != nil {
		return err
	}
	if opts.Parallel <= 0 {
		opts.Parallel = 2 * runtime.NumCPU()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	x := newExecutor(driver, plan, opts)
	return x.run(ctx)
}

// executor is Kahn's algorithm: one coordinator goroutine owns every field;
// workers only make the engine call and send the result back.
type executor struct {
	d          engine.Driver
	steps      []Step
	opts       ApplyOptions
	indeg      []int
	dependents [][]int
	followers  [][]int // steps that only follow, see Step.After
	ready      []int
	blocked    []error  // why a step will be skipped
	created    []string // container IDs returned by create steps
	results    chan result
	errs       []error
	canceled   error // the context's error, once it skipped a step
	inFlight   int
}

type result struct {
	id        int
	container string
	err       error
	took      time.Duration
}

func newExecutor(d engine.Driver, p Plan, opts ApplyOptions) *executor {
	n := len(p.Steps)
	x := &executor{
		d: d, steps: p.Steps, opts: opts,
		indeg:      make([]int, n),
		dependents: make([][]int, n),
		followers:  make([][]int, n),
		blocked:    make([]error, n),
		created:    make([]string, n),
		results:    make(chan result),
	}
	for _, s := range p.Steps {
		x.indeg[s.ID] = len(s.Waits) + len(s.After)
		for _, w := range s.Waits {
			x.dependents[w] = append(x.dependents[w], s.ID)
		}
		for _, w := range s.After {
			x.followers[w] = append(x.followers[w], s.ID)
		}
		if x.indeg[s.ID] == 0 {
			x.ready = append(x.ready, s.ID)
		}
	}
	return x
}

func (x *executor) run(ctx context.Context) error {
	for finished := 0; finished < len(x.steps); {
		finished += x.skipBlocked(ctx)
		x.launchReady(ctx)
		if x.inFlight == 0 {
			if len(x.ready) == 0 {
				break
			}
			continue
		}
		r := <-x.results
		x.inFlight--
		finished++
		x.finish(r)
	}
	if x.canceled != nil {
		x.errs = append(x.errs, x.canceled)
	}
	return errors.Join(x.errs...)
}

// skipBlocked reports the ready steps that cannot run, repeatedly, since a
// skip makes its own dependents ready.
func (x *executor) skipBlocked(ctx context.Context) int {
	n := 0
	for {
		i := slices.IndexFunc(x.ready, func(id int) bool { return x.blocked[id] != nil || ctx.Err() != nil })
		if i < 0 {
			return n
		}
		id := x.ready[i]
		x.ready = slices.Delete(x.ready, i, i+1)
		err := x.blocked[id]
		if err == nil {
			err, x.canceled = ctx.Err(), ctx.Err()
		}
		x.emit(Event{Step: x.steps[id], Status: EventSkipped, At: x.opts.Now(), Err: err})
		x.release(id, err)
		n++
	}
}

// launchReady starts the lowest-numbered ready steps while there is room.
func (x *executor) launchReady(ctx context.Context) {
	slices.Sort(x.ready)
	for x.inFlight < x.opts.Parallel && len(x.ready) > 0 {
		id := x.ready[0]
		x.ready = x.ready[1:]
		s := x.steps[id]
		target, targets := x.resolve(s)
		x.inFlight++
		x.emit(Event{Step: s, Status: EventStarted, At: x.opts.Now(), ContainerID: target})
		go func() {
			start := x.opts.Now()
			cid, err := x.call(ctx, s, target, targets)
			x.results <- result{id: id, container: cid, err: err, took: x.opts.Now().Sub(start)}
		}()
	}
}

// resolve turns the step's Refs into container IDs; every Ref to a step
// names one it waits for, so the ID is known.
func (x *executor) resolve(s Step) (string, []string) {
	ref := func(r Ref) string {
		if r.ID != "" {
			return r.ID
		}
		return x.created[r.Step]
	}
	var targets []string
	for _, r := range s.Targets {
		targets = append(targets, ref(r))
	}
	if !usesTarget(s.Kind) {
		return "", targets
	}
	return ref(s.Target), targets
}

func (x *executor) finish(r result) {
	s := x.steps[r.id]
	ev := Event{Step: s, Status: EventDone, At: x.opts.Now(), Duration: r.took, ContainerID: r.container, Err: r.err}
	if r.err != nil {
		ev.Status = EventFailed
		x.errs = append(x.errs, r.err)
		x.emit(ev)
		x.release(r.id, fmt.Errorf("skipped: %w", r.err))
		return
	}
	if s.Kind == KindCreateContainer {
		x.created[r.id] = r.container
	}
	x.emit(ev)
	x.release(r.id, nil)
}

// release counts id as finished for its dependents; cause, when set,
// marks them to be skipped.
func (x *executor) release(id int, cause error) {
	for _, dep := range x.dependents[id] {
		if cause != nil && x.blocked[dep] == nil {
			x.blocked[dep] = cause
		}
		x.countDown(dep)
	}
	for _, f := range x.followers[id] {
		x.countDown(f)
	}
}

func (x *executor) countDown(id int) {
	if x.indeg[id]--; x.indeg[id] == 0 {
		x.ready = append(x.ready, id)
	}
}

func (x *executor) emit(e Event) {
	if x.opts.OnEvent != nil {
		x.opts.OnEvent(e)
	}
}
