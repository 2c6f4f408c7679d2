package ctrd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"

	"github.com/stackdev/stack/engine"
)

// runRecord is <state>/containers/<id>/run.json: what one run of the
// container set up on the host, written before each step so that a crash
// leaves enough to undo it, plus its start and exit.
type runRecord struct {
	NetNS       string               `json:"netns,omitempty"`
	Attachments []attachment         `json:"attachments,omitempty"`
	Ports       []engine.PortBinding `json:"ports,omitempty"` // as published
	StartedAt   time.Time            `json:"startedAt,omitzero"`
	FinishedAt  time.Time            `json:"finishedAt,omitzero"`
	ExitCode    int                  `json:"exitCode"`
	Exited      bool                 `json:"exited,omitempty"` // stopped by stack, task deleted
	// Proc identifies the run's init process, so that observing a running
	// container need not ask its task's shim (see hostProc.runs); nil when
	// it could not be read, or the run ended.
	Proc *procIdentity `json:"proc,omitempty"`
	// RestartCount is how many times the daemon restarted the container
	// for its policy since the user last started it.
	RestartCount int `json:"restartCount,omitempty"`
}

func (c *Client) runPath(id string) string { return c.containerDir(id, "run.json") }

func (c *Client) loadRun(id string) (runRecord, error) {
	var rr runRecord
	err := readJSON(c.runPath(id), &rr)
	if isNotExist(err) {
		return rr, nil
	}
	return rr, err
}

func (c *Client) saveRun(id string, rr runRecord) error {
	if err := writeJSON(c.runPath(id), rr); err != nil {
		return fmt.Errorf("container %s: write run record: %w", id, err)
	}
	return nil
}

// listRunRecords reads every container's run record, keyed by ID.
func (c *Client) listRunRecords() (map[string]runRecord, error) {
	paths, err := filepath.Glob(c.stateDir(dirContainers, "*", "run.json"))
	if err != nil {
		return nil, err
	}
	out := make(map[string]runRecord, len(paths))
	for _, p := range paths {
		var rr runRecord
		if err := readJSON(p, &rr); err == nil {
			out[filepath.Base(filepath.Dir(p))] = rr
		}
	}
	return out, nil
}

// containerByName finds the ID of the container with the given name.
func (c *Client) containerByName(ctx context.Context, name string) (string, error) {
	list, err := c.ctr.ContainerService().List(ctx, fmt.Sprintf("labels.%q==%s", engine.LabelName, strconv.Quote(name)))
	if err != nil {
		return "", fmt.Errorf("find container %s: %w", name, err)
	}
	if len(list) == 0 {
		return "", fmt.Errorf("container %s: %w", name, errdefs.ErrNotFound)
	}
	return list[0].ID, nil
}

// taskPid is the PID of the container's running task.
func (c *Client) taskPid(ctx context.Context, id string) (uint32, error) {
	resp, err := c.ctr.TaskService().Get(ctx, &tasks.GetRequest{ContainerID: id})
	if err != nil {
		return 0, errgrpc.ToNative(err)
	}
	return resp.Process.Pid, nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !isNotExist(err) {
		return err
	}
	return nil
}
