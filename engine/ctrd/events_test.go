package ctrd

import (
	"testing"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/core/events"
	"github.com/containerd/typeurl/v2"

	"github.com/stackdev/stack/engine"
)

func envelope(t *testing.T, topic string, v any) *events.Envelope {
	t.Helper()
	a, err := typeurl.MarshalAny(v)
	if err != nil {
		t.Fatal(err)
	}
	return &events.Envelope{Timestamp: time.Unix(100, 0), Namespace: "ns", Topic: topic, Event: a}
}

func TestEventsBecomePlainEngineValues(t *testing.T) {
	for _, tc := range []struct {
		topic string
		event any
		want  string // container ID; "" means left out
	}{
		{engine.TopicTaskStart, &apievents.TaskStart{ContainerID: "c1", Pid: 42}, "c1"},
		{engine.TopicTaskExit, &apievents.TaskExit{ContainerID: "c1", ID: "c1", ExitStatus: 137}, "c1"},
		{engine.TopicTaskExit, &apievents.TaskExit{ContainerID: "c1", ID: "exec-7"}, ""},
		{engine.TopicTaskDelete, &apievents.TaskDelete{ContainerID: "c1", ID: "c1"}, "c1"},
		{engine.TopicContainerCreate, &apievents.ContainerCreate{ID: "c2"}, "c2"},
		{engine.TopicContainerUpdate, &apievents.ContainerUpdate{ID: "c2"}, "c2"},
		{engine.TopicContainerDelete, &apievents.ContainerDelete{ID: "c2"}, "c2"},
		{"/tasks/exec-added", &apievents.TaskExecAdded{ContainerID: "c1", ExecID: "x"}, ""},
	} {
		ev, ok := toEvent(envelope(t, tc.topic, tc.event))
		if got := map[bool]string{true: ev.ContainerID}[ok]; got != tc.want {
			t.Errorf("%s %T: got %q (ok %v), want %q", tc.topic, tc.event, ev.ContainerID, ok, tc.want)
		}
		if ok && (ev.Topic != tc.topic || !ev.Time.Equal(time.Unix(100, 0))) {
			t.Errorf("%s: event %+v lost its topic or time", tc.topic, ev)
		}
	}
	if _, ok := toEvent(nil); ok {
		t.Error("a nil envelope became an event")
	}
}

func TestContainerEventsUseDockersActionNames(t *testing.T) {
	for _, tc := range []struct {
		topic, action string
		event         any
		code          int
	}{
		{engine.TopicContainerCreate, "create", &apievents.ContainerCreate{ID: "c1"}, 0},
		{engine.TopicTaskStart, "start", &apievents.TaskStart{ContainerID: "c1", Pid: 42}, 0},
		{engine.TopicTaskExit, "die", &apievents.TaskExit{ContainerID: "c1", ID: "c1", ExitStatus: 3}, 3},
		{engine.TopicTaskOOM, "oom", &apievents.TaskOOM{ContainerID: "c1"}, 0},
		{"/tasks/paused", "pause", &apievents.TaskPaused{ContainerID: "c1"}, 0},
		{"/tasks/resumed", "unpause", &apievents.TaskResumed{ContainerID: "c1"}, 0},
		{engine.TopicContainerUpdate, "update", &apievents.ContainerUpdate{ID: "c1"}, 0},
		{engine.TopicContainerDelete, "destroy", &apievents.ContainerDelete{ID: "c1"}, 0},
		{engine.TopicTaskExit, "", &apievents.TaskExit{ContainerID: "c1", ID: "exec-1", ExitStatus: 1}, 0},
		{engine.TopicTaskDelete, "", &apievents.TaskDelete{ContainerID: "c1", ID: "c1"}, 0},
	} {
		ev, ok := toContainerEvent(envelope(t, tc.topic, tc.event))
		if !ok {
			if tc.action != "" {
				t.Errorf("%T left out, want %q", tc.event, tc.action)
			}
			continue
		}
		if ev.Action != tc.action || ev.ID != "c1" || ev.ExitCode != tc.code || !ev.Time.Equal(time.Unix(100, 0)) {
			t.Errorf("%T = %+v, want action %q code %d", tc.event, ev, tc.action, tc.code)
		}
	}
}
