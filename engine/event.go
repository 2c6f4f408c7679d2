package engine

import "time"

// Event is one change the container engine reported: a task started, exited
// or was deleted, a container was created, updated or deleted. It carries no
// state: a consumer re-observes (level-based), it never replays events.
type Event struct {
	Time        time.Time // when the engine published it
	Topic       string    // one of the Topic constants
	ContainerID string
}

// Event topics, as containerd names them.
const (
	TopicTaskStart       = "/tasks/start"
	TopicTaskExit        = "/tasks/exit"
	TopicTaskDelete      = "/tasks/delete"
	TopicTaskOOM         = "/tasks/oom"
	TopicContainerCreate = "/containers/create"
	TopicContainerUpdate = "/containers/update"
	TopicContainerDelete = "/containers/delete"
)
