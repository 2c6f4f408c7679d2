package ctrd

import (
	"regexp"
	"strconv"
	"testing"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/v2/pkg/filters"

	"github.com/stackdev/stack/engine"
)

// The subscription's filters, as containerd evaluates them, keep every
// event of a container and leave out the healthcheck probes' events (and
// the exec-added and exec-started events of every exec).
func TestEventFiltersLeaveOutTheProbesEvents(t *testing.T) {
	f, err := filters.ParseAll(eventFilters("namespace==" + strconv.Quote("ns"))...)
	if err != nil {
		t.Fatalf("containerd does not parse the filters: %v", err)
	}
	ctr := "3f9ac5d1e0b24a7c8d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c"
	probe := probeExecID()
	for _, tc := range []struct {
		topic string
		event any
		want  bool
	}{
		{engine.TopicTaskStart, &apievents.TaskStart{ContainerID: ctr, Pid: 42}, true},
		{engine.TopicTaskExit, &apievents.TaskExit{ContainerID: ctr, ID: ctr, ExitStatus: 137}, true},
		{engine.TopicTaskExit, &apievents.TaskExit{ContainerID: ctr, ID: "exec-0123456789abcdef"}, true}, // a user's exec
		{engine.TopicTaskExit, &apievents.TaskExit{ContainerID: ctr, ID: probe}, false},
		{engine.TopicTaskDelete, &apievents.TaskDelete{ContainerID: ctr, ID: ctr}, true},
		{"/tasks/oom", &apievents.TaskOOM{ContainerID: ctr}, true},
		{"/tasks/paused", &apievents.TaskPaused{ContainerID: ctr}, true},
		{engine.TopicContainerDelete, &apievents.ContainerDelete{ID: ctr}, true},
		{"/tasks/exec-added", &apievents.TaskExecAdded{ContainerID: ctr, ExecID: probe}, false},
		{"/tasks/exec-started", &apievents.TaskExecStarted{ContainerID: ctr, ExecID: "exec-1"}, false},
		{"/images/create", &apievents.ImageCreate{Name: "busybox"}, false},
	} {
		if got := f.Match(envelope(t, tc.topic, tc.event)); got != tc.want {
			t.Errorf("%s %+v: delivered %v, want %v", tc.topic, tc.event, got, tc.want)
		}
	}
	other := envelope(t, engine.TopicTaskStart, &apievents.TaskStart{ContainerID: ctr})
	other.Namespace = "other"
	if f.Match(other) {
		t.Error("an event of another namespace is delivered")
	}
}

func TestNotPrefixPatternMatchesWhatDoesNotStartWithThePrefix(t *testing.T) {
	re := regexp.MustCompile(notPrefixPattern("health-"))
	for s, want := range map[string]bool{
		"health-1a2b": false, "health-": false,
		"": true, "h": true, "health": true, "healthy-1": true, "exec-1": true, "hx": true,
		"3f9ac5d1e0b24a7c": true, "a-health-1": true,
	} {
		if got := re.MatchString(s); got != want {
			t.Errorf("%q: matched %v, want %v", s, got, want)
		}
	}
}
