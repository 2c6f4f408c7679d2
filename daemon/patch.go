package daemon

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/netdns"
)

// ContainerObserver is what a Source may add so that one container's event
// reaches the answers in milliseconds: an observation of that container
// alone, whose cost does not grow with the number of containers
// (engine/ctrd.Client has it). A container that is gone is an error that
// errdefs.IsNotFound recognises.
type ContainerObserver interface {
	ObserveContainer(ctx context.Context, id string) (engine.Container, error)
}

// maxPendingPatches bounds the containers waiting for their own
// observation; an event beyond it is left to the full refresh.
const maxPendingPatches = 256

// patchTimeout bounds one container's observation (a hung shim).
const patchTimeout = 5 * time.Second

// patchWorkers observe containers at once: a slow shim does not hold the
// others' answers back.
const patchWorkers = 4

// pendingPatch is a container waiting for its observation: the earliest
// event that asked for it, and whether one said it was deleted (then there
// is nothing to observe).
type pendingPatch struct {
	event   time.Time
	deleted bool
}

// A patch is one container as observed alone, newer than the base for it.
type patch struct {
	ctr  engine.Container
	gone bool
	at   time.Time // when its observation started
}

// answers is what the published table is built from: the State of the last
// full refresh (base, observed from baseFrom) with the newer patches over
// it. Both the refresh and the patcher publish through it, one at a time.
type answers struct {
	base     engine.State
	baseFrom time.Time
	patches  map[string]patch
}

// containers is the base's containers with the patches applied: a patched
// container replaces the base's, a gone one is left out, a new one is
// added (in ID order, so that the table does not depend on map order).
func (a *answers) containers() []engine.Container {
	out := make([]engine.Container, 0, len(a.base.Containers)+len(a.patches))
	inBase := make(map[string]bool, len(a.base.Containers))
	for _, c := range a.base.Containers {
		inBase[c.ID] = true
		p, ok := a.patches[c.ID]
		switch {
		case !ok:
			out = append(out, c)
		case !p.gone:
			out = append(out, p.ctr)
		}
	}
	var added []string
	for id, p := range a.patches {
		if !inBase[id] && !p.gone {
			added = append(added, id)
		}
	}
	slices.Sort(added)
	for _, id := range added {
		out = append(out, a.patches[id].ctr)
	}
	return out
}

// setBase takes a full refresh's State, observed from start: the patches
// observed before start are in it and are dropped; newer ones stay over it.
func (a *answers) setBase(st engine.State, start time.Time) {
	a.base, a.baseFrom = st, start
	for id, p := range a.patches {
		if p.at.Before(start) {
			delete(a.patches, id)
		}
	}
}

// add keeps a patch newer than the base and than the container's previous
// patch; it reports whether it did.
func (a *answers) add(id string, p patch) bool {
	if p.at.Before(a.baseFrom) {
		return false // observed before the base: the base has it
	}
	if prev, ok := a.patches[id]; ok && p.at.Before(prev.at) {
		return false
	}
	if a.patches == nil {
		a.patches = map[string]patch{}
	}
	a.patches[id] = p
	return true
}

// publishBase swaps in the table of a full refresh's State (with the patches
// newer than it) and keeps the State for status and the listeners.
func (d *Daemon) publishBase(st engine.State, start time.Time) {
	d.pub.Lock()
	defer d.pub.Unlock()
	d.answers.setBase(st, start)
	d.publish(&st)
}

// publish swaps in the table of base ⊕ patches; the caller holds d.pub.
// st, when not nil, is the new base State for status.
func (d *Daemon) publish(st *engine.State) {
	view := d.answers.base
	view.Containers = d.answers.containers()
	eps := Endpoints(view)
	d.dns.SetTable(netdns.NewTable(eps))
	d.mu.Lock()
	if st != nil {
		d.state = *st
	}
	d.endpoints = eps
	d.mu.Unlock()
}

// queuePatch notes that the event's container should be observed alone; it
// reports false when it cannot be (no ContainerObserver, no container ID,
// too many pending), and the full refresh must show it instead. at is the
// event's time, for the event-to-answer latency.
func (d *Daemon) queuePatch(ev engine.Event, at time.Time) bool {
	if d.observer == nil || ev.ContainerID == "" {
		return false
	}
	d.pmu.Lock()
	prev, ok := d.pendingIDs[ev.ContainerID]
	if !ok && len(d.pendingIDs) >= maxPendingPatches {
		d.pmu.Unlock()
		return false
	}
	next := prev
	if !ok || at.Before(prev.event) {
		next.event = at
	}
	next.deleted = next.deleted || ev.Topic == engine.TopicContainerDelete
	d.pendingIDs[ev.ContainerID] = next
	d.pmu.Unlock()
	select {
	case d.patchPoke <- struct{}{}:
	default:
	}
	return true
}

// patchLoop observes each container an event named, alone and at once (no
// debounce), and publishes it. It runs beside the refresh loop, so that a
// full refresh under way never delays it, with a few workers, so that a
// container whose shim is slow to answer does not hold the others back.
func (d *Daemon) patchLoop(ctx context.Context) {
	var wg sync.WaitGroup
	for range patchWorkers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-d.patchPoke:
				}
				for id, pending, ok := d.nextPatch(); ok; id, pending, ok = d.nextPatch() {
					d.patchOne(ctx, id, pending)
				}
			}
		})
	}
	wg.Wait()
}

// nextPatch takes one pending container; when more are pending, it wakes
// another worker for them.
func (d *Daemon) nextPatch() (id string, pending pendingPatch, ok bool) {
	d.pmu.Lock()
	defer d.pmu.Unlock()
	for id, pending = range d.pendingIDs {
		delete(d.pendingIDs, id)
		ok = true
		break
	}
	if len(d.pendingIDs) > 0 {
		select {
		case d.patchPoke <- struct{}{}:
		default:
		}
	}
	return id, pending, ok
}

// patchOne observes one container and publishes it over the base. A
// container that cannot be observed is left to the full refresh, which
// then measures its event's latency.
func (d *Daemon) patchOne(ctx context.Context, id string, pending pendingPatch) {
	event := pending.event
	var p patch
	var err error
	if pending.deleted {
		p = patch{gone: true, at: time.Now()} // gone: no need to ask containerd
	} else {
		p, err = d.observeOne(ctx, id)
	}
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("daemon: cannot observe a container alone; the full refresh will", "container", id, "err", err)
			d.changed(event)
		}
		return
	}
	d.pub.Lock()
	if d.answers.add(id, p) {
		d.publish(nil)
	}
	d.pub.Unlock()
	d.recordPatch(event)
}

func (d *Daemon) observeOne(ctx context.Context, id string) (patch, error) {
	at := time.Now()
	octx, cancel := context.WithTimeout(ctx, patchTimeout)
	defer cancel()
	c, err := d.observer.ObserveContainer(octx, id)
	if isNotFound(err) {
		return patch{gone: true, at: at}, nil
	}
	if err != nil {
		return patch{}, err
	}
	return patch{ctr: c, at: at}, nil
}

// isNotFound is errdefs.IsNotFound without importing errdefs (the daemon
// imports only the standard library, engine and netdns): errdefs' errors
// mark themselves with a NotFound method.
func isNotFound(err error) bool {
	var nf interface{ NotFound() }
	return errors.As(err, &nf)
}

// recordPatch counts a published patch and its event-to-answer latency.
// A patch observed before the base was already in the answers when the
// base was swapped in: its latency is counted all the same, as an upper
// bound.
func (d *Daemon) recordPatch(event time.Time) {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	s := &d.stats
	s.Patches++
	s.LastEventLatency = now.Sub(event)
	s.MaxEventLatency = max(s.MaxEventLatency, s.LastEventLatency)
}
