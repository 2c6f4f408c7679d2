package reconcile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stackdev/stack/compose"
	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/enginetest"
)

// converge computes against the fake, applies, and returns the plan.
func converge(t *testing.T, f *enginetest.Fake, d compose.Desired, opts Options, aopts ApplyOptions) (Plan, error) {
	t.Helper()
	st, err := f.Observe(t.Context(), d.Project)
	if err != nil {
		t.Fatal(err)
	}
	p := compute(t, d, st, opts)
	return p, Apply(t.Context(), f, p, aopts)
}

func wantConverged(t *testing.T, f *enginetest.Fake, d compose.Desired, opts Options) {
	t.Helper()
	st, err := f.Observe(t.Context(), d.Project)
	if err != nil {
		t.Fatal(err)
	}
	if p := compute(t, d, st, opts); !p.Empty() {
		t.Errorf("after apply the plan is not empty:\n%s\n%s", p, p.Graph())
	}
}

// eventLog records events and checks that no step started before what it
// waits for was done.
type eventLog struct {
	mu     sync.Mutex
	events []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

func (l *eventLog) status(id int) EventStatus {
	var s EventStatus
	for _, e := range l.events {
		if e.Step.ID == id {
			s = e.Status
		}
	}
	return s
}

func (l *eventLog) checkOrder(t *testing.T) {
	t.Helper()
	done := map[int]bool{}
	for _, e := range l.events {
		switch e.Status {
		case EventStarted:
			for _, w := range e.Step.Waits {
				if !done[w] {
					t.Errorf("step #%d (%s) started before #%d was done", e.Step.ID, e.Step.Describe(), w)
				}
			}
		case EventDone:
			done[e.Step.ID] = true
		}
	}
}

func TestApplyFreshUpThenNothingToDo(t *testing.T) {
	f := enginetest.NewFake()
	var log eventLog
	p, err := converge(t, f, webAndDB(), Options{}, ApplyOptions{Parallel: 4, OnEvent: log.add})
	if err != nil {
		t.Fatal(err)
	}
	log.checkOrder(t)
	for _, s := range p.Steps {
		if got := log.status(s.ID); got != EventDone {
			t.Errorf("step #%d %s ended %q, want done", s.ID, s.Describe(), got)
		}
	}
	wantConverged(t, f, webAndDB(), Options{})
}

func TestApplyReplacePassesTheNewIDAlong(t *testing.T) {
	f := enginetest.NewFake()
	if _, err := converge(t, f, webAndDB(), Options{}, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	f.ResetCalls()
	if _, err := converge(t, f, webAndDB("POSTGRES_DB=app"), Options{}, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	var calls []string
	var newID string
	for _, c := range f.Calls() {
		calls = append(calls, c.String())
		if c.Method == "CreateContainer" {
			newID = c.ID
		}
	}
	oldName := calls[0][len("CreateContainer "):]
	want := []string{
		"CreateContainer " + oldName,
		"StopContainer demo-db-1",
		"RemoveContainer demo-db-1",
		"RenameContainer " + oldName,
		"StartContainer demo-db-1",
	}
	if !slices.Equal(calls, want) || !strings.HasSuffix(oldName, "_demo-db-1") {
		t.Fatalf("calls:\n%s\nwant\n%s", strings.Join(calls, "\n"), strings.Join(want, "\n"))
	}
	for _, c := range f.Calls()[3:] {
		if c.ID != newID {
			t.Errorf("%s acted on %s, want the new container %s", c.Method, c.ID, newID)
		}
	}
	wantConverged(t, f, webAndDB("POSTGRES_DB=app"), Options{})
}

func TestApplyFailureSkipsDependentsWhileIndependentBranchesFinish(t *testing.T) {
	d := demo(
		svcDef{name: "db"},
		svcDef{name: "web", deps: []engine.Dependency{dep("db")}},
		svcDef{name: "cache"},
	)
	f := enginetest.NewFake()
	boom := errors.New("disk full")
	f.FailOn("StartContainer", "demo-db-1", boom)
	var log eventLog
	p, err := converge(t, f, d, Options{}, ApplyOptions{Parallel: 2, OnEvent: log.add})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "start container demo-db-1: disk full") {
		t.Fatalf("error %v, want the failed start named and wrapping the cause", err)
	}
	got := map[string]EventStatus{}
	for _, s := range p.Steps {
		got[s.Describe()] = log.status(s.ID)
	}
	want := map[string]EventStatus{
		"pull image docker.io/library/busybox:latest": EventDone,
		"create network demo_default":                 EventDone,
		"create container demo-db-1":                  EventDone,
		"start container demo-db-1":                   EventFailed,
		"create container demo-web-1":                 EventSkipped,
		"start container demo-web-1":                  EventSkipped,
		"create container demo-cache-1":               EventDone,
		"start container demo-cache-1":                EventDone,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	for _, e := range log.events {
		if e.Status == EventSkipped && !errors.Is(e.Err, boom) {
			t.Errorf("skip of %s does not say why: %v", e.Step.Describe(), e.Err)
		}
	}
	// The next run converges.
	f.Before = nil
	if _, err := converge(t, f, d, Options{}, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	wantConverged(t, f, d, Options{})
}

func TestApplyJoinsTheErrorsOfIndependentSteps(t *testing.T) {
	var p Plan
	b := newBuilder("demo")
	for _, v := range []string{"a", "b", "c"} {
		b.add(-1, Step{Kind: KindCreateVolume, Resource: v, Volume: engine.VolumeSpec{Name: v}})
	}
	p = b.plan(nil)
	f := enginetest.NewFake()
	errA, errC := errors.New("fail a"), errors.New("fail c")
	f.Before = func(_ context.Context, c enginetest.Call) error {
		return map[string]error{"a": errA, "c": errC}[c.Name]
	}
	err := Apply(t.Context(), f, p, ApplyOptions{Parallel: 1})
	if !errors.Is(err, errA) || !errors.Is(err, errC) {
		t.Fatalf("error %v, want both failures joined", err)
	}
	st, _ := f.Observe(t.Context(), "")
	if len(st.Volumes) != 1 || st.Volumes[0].Name != "b" {
		t.Errorf("volumes %v, want b created", st.Volumes)
	}
}

func TestApplyNeverExceedsParallel(t *testing.T) {
	const limit, n = 3, 12
	b := newBuilder("demo")
	for i := 0; i < n; i++ {
		v := fmt.Sprintf("v%d", i)
		b.add(-1, Step{Kind: KindCreateVolume, Resource: v, Volume: engine.VolumeSpec{Name: v}})
	}
	f := enginetest.NewFake()
	var mu sync.Mutex
	inFlight, most := 0, 0
	release := make(chan struct{})
	f.Before = func(ctx context.Context, c enginetest.Call) error {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		select {
		case <-release:
		case <-ctx.Done():
		}
		mu.Lock()
		inFlight--
		mu.Unlock()
		return nil
	}
	done := make(chan error)
	go func() { done <- Apply(t.Context(), f, b.plan(nil), ApplyOptions{Parallel: limit}) }()
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return inFlight == limit })
	time.Sleep(50 * time.Millisecond) // a fourth call would arrive now
	mu.Lock()
	if most != limit {
		t.Errorf("%d calls in flight, want %d", most, limit)
	}
	mu.Unlock()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if most != limit {
		t.Errorf("at most %d calls in flight, want %d", most, limit)
	}
	if got := len(f.Calls()); got != n {
		t.Errorf("%d calls, want %d", got, n)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestApplyStopsLaunchingWhenTheContextEnds(t *testing.T) {
	f := enginetest.NewFake()
	ctx, cancel := context.WithCancel(t.Context())
	f.Before = func(_ context.Context, c enginetest.Call) error {
		if c.Method == "PullImage" {
			cancel()
		}
		return nil
	}
	p := compute(t, webAndDB(), engine.State{}, Options{})
	var log eventLog
	err := Apply(ctx, f, p, ApplyOptions{Parallel: 1, OnEvent: log.add})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if calls := f.Calls(); len(calls) > 1 {
		t.Errorf("calls after cancel: %v", calls)
	}
	if got := log.status(len(p.Steps) - 1); got != EventSkipped {
		t.Errorf("last step: %q, want skipped", got)
	}
}

func TestApplyRejectsAnInvalidPlanBeforeCallingTheEngine(t *testing.T) {
	f := enginetest.NewFake()
	cyclic := Plan{Steps: []Step{
		{ID: 0, Kind: KindCreateVolume, Resource: "a", Waits: []int{1}},
		{ID: 1, Kind: KindCreateVolume, Resource: "b", Waits: []int{0}},
	}}
	unresolved := Plan{Steps: []Step{
		{ID: 0, Kind: KindCreateVolume, Resource: "a"},
		{ID: 1, Kind: KindStartContainer, Resource: "x", Target: Ref{Step: 0}, Waits: []int{0}},
	}}
	for name, p := range map[string]Plan{"cycle": cyclic, "ref to a non-create": unresolved} {
		if err := Apply(t.Context(), f, p, ApplyOptions{}); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if calls := f.Calls(); len(calls) != 0 {
		t.Errorf("calls made: %v", calls)
	}
}

func TestApplyEventsCarryTiming(t *testing.T) {
	f := enginetest.NewFake()
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(time.Second)
		return clock
	}
	var log eventLog
	b := newBuilder("demo")
	b.add(-1, Step{Kind: KindCreateVolume, Resource: "v", Volume: engine.VolumeSpec{Name: "v"}})
	if err := Apply(t.Context(), f, b.plan(nil), ApplyOptions{Now: now, OnEvent: log.add}); err != nil {
		t.Fatal(err)
	}
	if len(log.events) != 2 || log.events[0].Status != EventStarted || log.events[1].Status != EventDone {
		t.Fatalf("events %+v, want started then done", log.events)
	}
	if d := log.events[1].Duration; d != time.Second {
		t.Errorf("duration %v, want 1s on the test clock", d)
	}
}

func TestApplyWaitStepCallsTheWaitHookWithResolvedIDs(t *testing.T) {
	d := demo(
		svcDef{name: "db"},
		svcDef{name: "web", deps: []engine.Dependency{{Service: "db", Condition: "service_healthy"}}},
	)
	f := enginetest.NewFake()
	var got []string
	var cond string
	wait := func(_ context.Context, condition string, ids []string) error {
		cond, got = condition, ids
		return nil
	}
	if _, err := converge(t, f, d, Options{}, ApplyOptions{Wait: wait}); err != nil {
		t.Fatal(err)
	}
	st, _ := f.Observe(t.Context(), "demo")
	db := container(t, &st, "demo-db-1")
	if cond != "service_healthy" || !slices.Equal(got, []string{db.ID}) {
		t.Errorf("wait called with %q %v, want service_healthy [%s]", cond, got, db.ID)
	}
}

func TestPlanSaysWhatChangedWhenTheContainerRecordsItsConcerns(t *testing.T) {
	f := enginetest.NewFake()
	before := demo(svcDef{name: "db", env: []string{"POSTGRES_DB=a", "POSTGRES_USER=u"}}, svcDef{name: "web"})
	if _, err := converge(t, f, before, Options{}, ApplyOptions{}); err != nil {
		t.Fatal(err)
	}
	after := demo(svcDef{name: "db", env: []string{"POSTGRES_DB=b", "POSTGRES_USER=u", "TZ=UTC"}}, svcDef{name: "web", image: postgres})
	after.Containers[1].Network.Ports = []engine.PortBinding{{HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}
	st, _ := f.Observe(t.Context(), "demo")
	p := compute(t, after, st, Options{})
	wantText(t, "plan", p.String(), `
		↓ image docker.io/library/postgres:16 (not present)
		~ container demo-db-1 (environment changed: POSTGRES_DB, TZ)
		~ container demo-web-1 (image changed; ports changed)

		Plan: 1 to pull, 0 to add, 2 to change, 0 to remove.`)
}

func TestApplyRunsADependentWhoseDependencyIsNotRequiredAndFailed(t *testing.T) {
	d := demo(
		svcDef{name: "metrics"},
		svcDef{name: "web", deps: []engine.Dependency{{Service: "metrics", Condition: "service_started", Required: false}}},
	)
	f := enginetest.NewFake()
	boom := errors.New("no metrics today")
	f.FailOn("StartContainer", "demo-metrics-1", boom)
	var log eventLog
	p, err := converge(t, f, d, Options{}, ApplyOptions{OnEvent: log.add})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want the metrics failure", err)
	}
	if !strings.Contains(p.Graph(), "create-container demo-web-1 <- #0 #1 after #3") {
		t.Errorf("web does not only follow metrics:\n%s", p.Graph())
	}
	st, _ := f.Observe(t.Context(), "demo")
	if web := container(t, &st, "demo-web-1"); web.Status != engine.StatusRunning {
		t.Errorf("web is %s, want running although metrics failed", web.Status)
	}
}
