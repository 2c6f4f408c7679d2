package ctrd

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	apievents "github.com/containerd/containerd/api/events"
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
	ns := "namespace==" + strconv.Quote(c.opts.Namespace)
	ch, errs := c.ctr.Subscribe(ctx,
		ns+`,topic~="^/tasks/"`,
		ns+`,topic~="^/containers/"`,
	)
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
			if ev, ok := toEvent(env); ok {
				fn(ev)
			}
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
