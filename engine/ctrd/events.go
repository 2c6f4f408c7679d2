package ctrd

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/errdefs/pkg/errgrpc"
	"github.com/containerd/typeurl/v2"

	"github.com/stackdev/stack/engine"
)

// ErrEventsClosed is returned by Events when containerd ends the stream
// without an error (it is shutting down): subscribe again once it answers.
var ErrEventsClosed = errors.New("containerd closed the event stream")

// Events calls fn for each task and container event of the client's
// namespace, in order, until ctx is done (it then returns nil) or the stream
// fails. This is the only place containerd's events API is used; fn gets
// plain engine values and should return quickly (it runs on the receiving
// goroutine). Exits of exec'd processes are not reported: they change
// nothing a container's observer sees.
func (c *Client) Events(ctx context.Context, fn func(engine.Event)) error {
	return c.subscribe(ctx, func(env *events.Envelope) {
		if ev, ok := toEvent(env); ok {
			fn(ev)
		}
	})
}

// subscribe calls fn for each task and container envelope of the client's
// namespace until ctx is done (nil) or the stream fails.
func (c *Client) subscribe(ctx context.Context, fn func(*events.Envelope)) error {
	ns := "namespace==" + strconv.Quote(c.opts.Namespace)
	ch, errs := c.ctr.Subscribe(ctx, eventFilters(ns)...)
	for {
		select {
		case <-ctx.Done():
			return nil
		case err, ok := <-errs:
			if ctx.Err() != nil {
				return nil
			}
			if !ok || err == nil {
				return ErrEventsClosed
			}
			return fmt.Errorf("containerd events: %w", errgrpc.ToNative(err))
		case env, ok := <-ch:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				return ErrEventsClosed
			}
			fn(env)
		}
	}
}

// toEvent turns an envelope into an engine.Event; ok is false for topics
// an observer does not care about and for exec exits.
func toEvent(env *events.Envelope) (engine.Event, bool) {
	if env == nil {
		return engine.Event{}, false
	}
	ev := engine.Event{Time: env.Timestamp, Topic: env.Topic}
	if env.Event == nil {
		return ev, false
	}
	v, err := typeurl.UnmarshalAny(env.Event)
	if err != nil {
		return ev, false
	}
	switch e := v.(type) {
	case *apievents.TaskStart:
		ev.ContainerID = e.GetContainerID()
	case *apievents.TaskExit:
		if e.GetID() != "" && e.GetID() != e.GetContainerID() {
			return ev, false // an exec'd process, not the container's
		}
		ev.ContainerID = e.GetContainerID()
	case *apievents.TaskDelete:
		if e.GetID() != "" && e.GetID() != e.GetContainerID() {
			return ev, false
		}
		ev.ContainerID = e.GetContainerID()
	case *apievents.TaskOOM:
		ev.ContainerID = e.GetContainerID()
	case *apievents.ContainerCreate:
		ev.ContainerID = e.GetID()
	case *apievents.ContainerUpdate:
		ev.ContainerID = e.GetID()
	case *apievents.ContainerDelete:
		ev.ContainerID = e.GetID()
	default:
		return ev, false // task create, paused, exec added/started, checkpointed, ...
	}
	return ev, true
}

// ContainerEvent is one container event as `stack events` shows it: docker's
// action names, the container's labels and image, the exit code of a die.
type ContainerEvent struct {
	Time     time.Time
	Action   string // create, start, die, oom, pause, unpause, update, destroy
	ID       string
	ExitCode int // die only
	Image    string
	Labels   map[string]string
}

// ContainerEvents calls fn for each container event of the client's
// namespace, in order, until ctx is done (nil) or the stream fails. The
// labels of a container are read once and remembered, so the destroy of a
// container still says which project and service it belonged to.
func (c *Client) ContainerEvents(ctx context.Context, fn func(ContainerEvent)) error {
	known := map[string]containers.Container{}
	store := c.ctr.ContainerService()
	list, err := store.List(ctx)
	if err != nil {
		return fmt.Errorf("list containers: %w", errgrpc.ToNative(err))
	}
	for _, info := range list {
		known[info.ID] = info
	}
	return c.subscribe(ctx, func(env *events.Envelope) {
		ev, ok := toContainerEvent(env)
		if !ok {
			return
		}
		info, ok := known[ev.ID]
		if !ok || ev.Action == "update" {
			if got, err := store.Get(ctx, ev.ID); err == nil {
				info, ok = got, true
				known[ev.ID] = got
			}
		}
		if !ok {
			return // created and deleted before it could be read
		}
		ev.Image, ev.Labels = info.Image, info.Labels
		if ev.Action == "destroy" {
			delete(known, ev.ID)
		}
		fn(ev)
	})
}

// toContainerEvent names an envelope with docker's action; ok is false for
// what docker does not report on a container (task create and delete,
// exec'd processes, checkpoints).
func toContainerEvent(env *events.Envelope) (ContainerEvent, bool) {
	if env == nil || env.Event == nil {
		return ContainerEvent{}, false
	}
	v, err := typeurl.UnmarshalAny(env.Event)
	if err != nil {
		return ContainerEvent{}, false
	}
	ev := ContainerEvent{Time: env.Timestamp}
	switch e := v.(type) {
	case *apievents.ContainerCreate:
		ev.Action, ev.ID = "create", e.GetID()
	case *apievents.ContainerUpdate:
		ev.Action, ev.ID = "update", e.GetID()
	case *apievents.ContainerDelete:
		ev.Action, ev.ID = "destroy", e.GetID()
	case *apievents.TaskStart:
		ev.Action, ev.ID = "start", e.GetContainerID()
	case *apievents.TaskExit:
		if e.GetID() != "" && e.GetID() != e.GetContainerID() {
			return ev, false
		}
		ev.Action, ev.ID, ev.ExitCode = "die", e.GetContainerID(), int(e.GetExitStatus())
	case *apievents.TaskOOM:
		ev.Action, ev.ID = "oom", e.GetContainerID()
	case *apievents.TaskPaused:
		ev.Action, ev.ID = "pause", e.GetContainerID()
	case *apievents.TaskResumed:
		ev.Action, ev.ID = "unpause", e.GetContainerID()
	default:
		return ev, false
	}
	return ev, true
}
