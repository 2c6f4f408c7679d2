package ctrd

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/errdefs/pkg/errgrpc"

	"github.com/stackdev/stack/engine"
)

// Observe reads the live state with one containers list (filtered by the
// project label, or every stack container for ""), one tasks list, the run
// records, and the network and volume records. Networks and volumes are
// returned for every project, so that external ones (created by another
// project) are visible: filter them by Project.
func (c *Client) Observe(ctx context.Context, project string) (engine.State, error) {
	filter := fmt.Sprintf("labels.%q", engine.LabelName)
	if project != "" {
		filter = fmt.Sprintf("labels.%q==%s", engine.LabelProject, strconv.Quote(project))
	}
	list, err := c.ctr.ContainerService().List(ctx, filter)
	if err != nil {
		return engine.State{}, fmt.Errorf("observe: list containers: %w", err)
	}
	procs, err := c.taskList(ctx)
	if err != nil {
		return engine.State{}, err
	}
	var st engine.State
	st.Containers = c.observeContainers(list, procs)
	if err := c.observeRecords(&st); err != nil {
		return st, err
	}
	if st.Images, err = c.ImageDigests(ctx); err != nil {
		return st, err
	}
	return st, nil
}

// observeContainers decodes the containers on every CPU: decoding JSON and
// reading run records is most of Observe's own time.
func (c *Client) observeContainers(list []containers.Container, procs map[string]*task.Process) []engine.Container {
	out := make([]engine.Container, len(list))
	var wg sync.WaitGroup
	workers := min(runtime.NumCPU(), len(list))
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(list); i += workers {
				out[i] = c.observeContainer(list[i], procs[list[i].ID])
			}
		}()
	}
	wg.Wait()
	kept := out[:0]
	for _, ctr := range out {
		if ctr.Name != "" {
			kept = append(kept, ctr)
		}
	}
	return kept
}

func (c *Client) taskList(ctx context.Context) (map[string]*task.Process, error) {
	resp, err := c.ctr.TaskService().List(ctx, &tasks.ListTasksRequest{})
	if err != nil {
		return nil, fmt.Errorf("observe: list tasks: %w", errgrpc.ToNative(err))
	}
	out := make(map[string]*task.Process, len(resp.Tasks))
	for _, t := range resp.Tasks {
		// containerd 1.6 leaves ContainerID empty; a task's ID is its
		// container's.
		id := t.ContainerID
		if id == "" {
			id = t.ID
		}
		out[id] = t
	}
	return out, nil
}

func (c *Client) observeRecords(st *engine.State) error {
	nets, err := c.listNetworks()
	if err != nil {
		return err
	}
	for _, n := range nets {
		st.Networks = append(st.Networks, n.observed())
	}
	vols, err := c.listVolumes()
	if err != nil {
		return err
	}
	for _, v := range vols {
		st.Volumes = append(st.Volumes, v.observed(c))
	}
	return nil
}

func (c *Client) observeContainer(info containers.Container, proc *task.Process) engine.Container {
	l := info.Labels
	n, _ := strconv.Atoi(l[engine.LabelNumber])
	ctr := engine.Container{
		ID: info.ID, Name: l[engine.LabelName], Project: l[engine.LabelProject],
		Service: l[engine.LabelService], Number: n, OneOff: strings.EqualFold(l[engine.LabelOneOff], "true"),
		ConfigHash: l[engine.LabelConfigHash], Image: info.Image, ImageID: l[engine.LabelImage],
		Labels: l, CreatedAt: info.CreatedAt, Status: engine.StatusCreated,
	}
	var spec engine.ContainerSpec
	if ext, ok := info.Extensions[specExtension]; ok && ext != nil {
		_ = json.Unmarshal(ext.GetValue(), &spec)
	}
	ctr.Command = processCommand(info)
	for _, na := range spec.Network.Networks {
		ctr.Networks = append(ctr.Networks, na.Network)
		if len(na.Aliases) > 0 {
			if ctr.Aliases == nil {
				ctr.Aliases = map[string][]string{}
			}
			ctr.Aliases[na.Network] = na.Aliases
		}
	}
	if ownsNetNS(spec) {
		ctr.Hostname = containerHostname(info.ID, spec)
	}
	for _, m := range spec.Mounts {
		if m.Type == engine.MountVolume && m.Source != "" {
			ctr.Volumes = append(ctr.Volumes, m.Source)
		}
	}
	rr, _ := c.loadRun(info.ID)
	ctr.Ports = spec.Network.Ports
	if len(rr.Ports) > 0 {
		ctr.Ports = rr.Ports
	}
	ctr.StartedAt = rr.StartedAt
	for _, a := range rr.Attachments {
		if a.IPv4 != "" {
			if ctr.Addresses == nil {
				ctr.Addresses = map[string]string{}
			}
			ctr.Addresses[a.Network] = a.IPv4
		}
	}
	applyTask(&ctr, proc, rr)
	if ctr.Status == engine.StatusRunning {
		ctr.Health = c.observedHealth(info.ID, spec, rr.StartedAt)
	}
	return ctr
}

// processCommand is the command line the container runs, from the
// command extension, else from the OCI spec the list already returned.
func processCommand(info containers.Container) string {
	if ext, ok := info.Extensions[cmdExtension]; ok && ext != nil {
		var cmd string
		if json.Unmarshal(ext.GetValue(), &cmd) == nil {
			return cmd
		}
	}
	if info.Spec == nil {
		return ""
	}
	var s struct {
		Process struct{ Args []string } `json:"process"`
	}
	if json.Unmarshal(info.Spec.GetValue(), &s) != nil {
		return ""
	}
	return strings.Join(s.Process.Args, " ")
}

// applyTask sets status, exit code and PID from the task, or from the run
// record when stack stopped the container and deleted its task.
func applyTask(ctr *engine.Container, proc *task.Process, rr runRecord) {
	if proc == nil {
		if rr.Exited {
			ctr.Status, ctr.ExitCode = engine.StatusExited, rr.ExitCode
		}
		return
	}
	switch proc.Status {
	case task.Status_RUNNING:
		ctr.Status, ctr.Pid = engine.StatusRunning, int(proc.Pid)
	case task.Status_PAUSED, task.Status_PAUSING:
		ctr.Status, ctr.Pid = engine.StatusPaused, int(proc.Pid)
	case task.Status_STOPPED:
		ctr.Status, ctr.ExitCode = engine.StatusExited, int(proc.ExitStatus)
	case task.Status_CREATED:
		ctr.Status = engine.StatusCreated
	default:
		ctr.Status = engine.StatusUnknown
	}
}
