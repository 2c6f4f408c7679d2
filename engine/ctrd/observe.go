package ctrd

import (
	"cmp"
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
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"

	"github.com/stackdev/stack/engine"
)

// Observe reads the live state with one containers list (filtered by the
// project label, or every stack container for ""), one tasks list, the run
// records, and the network and volume records. Networks and volumes are
// returned for every project, so that external ones (created by another
// project) are visible: filter them by Project. The three containerd reads
// go out at once: the tasks list alone asks every shim for its state, and
// is most of Observe's time.
func (c *Client) Observe(ctx context.Context, project string) (engine.State, error) {
	filter := fmt.Sprintf("labels.%q", engine.LabelName)
	if project != "" {
		filter = fmt.Sprintf("labels.%q==%s", engine.LabelProject, strconv.Quote(project))
	}
	var (
		wg                sync.WaitGroup
		procs             map[string]*task.Process
		images            map[string]string
		taskErr, imageErr error
		st                engine.State
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		procs, taskErr = c.taskList(ctx)
	}()
	go func() {
		defer wg.Done()
		images, imageErr = c.ImageDigests(ctx)
	}()
	list, listErr := c.ctr.ContainerService().List(ctx, filter)
	var decoded []decodedContainer
	if listErr == nil {
		decoded = c.decodeContainers(list) // while the tasks list is still out
	}
	recordsErr := c.observeRecords(&st)
	wg.Wait()
	if listErr != nil {
		return engine.State{}, fmt.Errorf("observe: list containers: %w", listErr)
	}
	if err := cmp.Or(taskErr, imageErr, recordsErr); err != nil {
		return engine.State{}, err
	}
	unanswered := c.recheckStartingTasks(ctx, decoded, procs)
	st.Containers = c.withTasks(decoded, procs, unanswered)
	st.Images = images
	return st, nil
}

// ObserveContainer observes one container alone, as Observe would show it
// in its State: one container Get and one task Get (one shim asked, not
// every one), so its cost does not grow with the number of containers. A
// container that is gone, or is not a stack container, is an error that
// errdefs.IsNotFound recognises.
func (c *Client) ObserveContainer(ctx context.Context, id string) (engine.Container, error) {
	var (
		proc    *task.Process
		taskErr error
		done    = make(chan struct{})
	)
	go func() { // the shim's answer is most of the time: ask it meanwhile
		defer close(done)
		proc, taskErr = c.taskOf(ctx, id)
	}()
	info, err := c.ctr.ContainerService().Get(ctx, id)
	<-done
	if err != nil {
		return engine.Container{}, fmt.Errorf("observe container %s: %w", id, err)
	}
	if taskErr != nil {
		return engine.Container{}, taskErr
	}
	d := c.decodeContainer(info)
	if d.ctr.Name == "" {
		return engine.Container{}, fmt.Errorf("observe container %s: not a stack container: %w", id, errdefs.ErrNotFound)
	}
	if taskBehindRecord(proc, d.run) {
		if proc, err = c.taskOf(ctx, id); err != nil {
			return engine.Container{}, err
		}
	}
	out := c.withTasks([]decodedContainer{d}, map[string]*task.Process{id: proc}, nil)
	return out[0], nil
}

// recheckStartingTasks asks again, one by one, for the task of each
// container whose run record says a run goes on while the task list shows
// no task, or one not started yet. The list was asked for before the run
// records were read, so a start that landed in between shows in the
// record and not in the list: taken at its word, the container would look
// like one whose task vanished with containerd, and the daemon would
// decide its restart for a run that is in fact going on. Only containers
// in that state cost a Get.
//
// containerd 1.6 also leaves out of its list a task whose shim did not
// answer in time, and that shim may not answer the Get either: such a
// container is returned in unanswered, and its state is unknown, rather
// than failing the whole observation for one busy shim.
func (c *Client) recheckStartingTasks(ctx context.Context, decoded []decodedContainer, procs map[string]*task.Process) (unanswered map[string]bool) {
	for _, d := range decoded {
		if d.ctr.Name == "" || !taskBehindRecord(procs[d.ctr.ID], d.run) {
			continue
		}
		proc, err := c.taskOf(ctx, d.ctr.ID)
		if err != nil {
			c.opts.Logger.Warn("observe: a task did not answer; its container's state is unknown", "container", d.ctr.Name, "err", err)
			if unanswered == nil {
				unanswered = map[string]bool{}
			}
			unanswered[d.ctr.ID] = true
			continue
		}
		procs[d.ctr.ID] = proc
	}
	return unanswered
}

// taskBehindRecord says whether the task read may be older than the run
// record: the record shows a run started and not ended, and the task is
// missing or not started.
func taskBehindRecord(proc *task.Process, rr runRecord) bool {
	if rr.StartedAt.IsZero() || rr.Exited {
		return false
	}
	return proc == nil || proc.Status == task.Status_CREATED
}

// taskOf is the container's task, nil when it has none.
func (c *Client) taskOf(ctx context.Context, id string) (*task.Process, error) {
	resp, err := c.ctr.TaskService().Get(ctx, &tasks.GetRequest{ContainerID: id})
	if err != nil {
		if err = errgrpc.ToNative(err); errdefs.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("observe container %s: get task: %w", id, err)
	}
	return resp.Process, nil
}

// decodedContainer is a container as its record and run record tell it,
// before its task's state is known.
type decodedContainer struct {
	ctr  engine.Container
	spec engine.ContainerSpec
	run  runRecord
}

// withTasks adds each task's state (and, for running containers, their
// health) to the decoded containers.
func (c *Client) withTasks(decoded []decodedContainer, procs map[string]*task.Process, unanswered map[string]bool) []engine.Container {
	out := make([]engine.Container, 0, len(decoded))
	for _, d := range decoded {
		if d.ctr.Name == "" {
			continue // not a stack container
		}
		ctr := d.ctr
		applyTask(&ctr, procs[ctr.ID], d.run)
		if unanswered[ctr.ID] {
			ctr.Status = engine.StatusUnknown
		}
		if ctr.Status == engine.StatusRunning {
			ctr.Health = c.observedHealth(ctr.ID, d.spec, d.run.StartedAt)
		}
		out = append(out, ctr)
	}
	return out
}

// decodeContainers decodes the containers on every CPU: decoding JSON and
// reading run records is most of Observe's own time.
func (c *Client) decodeContainers(list []containers.Container) []decodedContainer {
	out := make([]decodedContainer, len(list))
	var wg sync.WaitGroup
	workers := min(runtime.NumCPU(), len(list))
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(list); i += workers {
				out[i] = c.decodeContainer(list[i])
			}
		}()
	}
	wg.Wait()
	return out
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

func (c *Client) decodeContainer(info containers.Container) decodedContainer {
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
	ctr.Restart, ctr.RestartCount, ctr.UserStopped = spec.Restart, rr.RestartCount, c.UserStopped(info.ID)
	return decodedContainer{ctr: ctr, spec: spec, run: rr}
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
			ctr.Status, ctr.ExitCode, ctr.FinishedAt = engine.StatusExited, rr.ExitCode, rr.FinishedAt
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
		if proc.ExitedAt != nil {
			ctr.FinishedAt = proc.ExitedAt.AsTime()
		}
	case task.Status_CREATED:
		// A start in progress (the task is created while CNI ADD runs).
		// Until the task runs, the container is as its last run left it:
		// seen as created with that run's start, it would look like one
		// whose task vanished with containerd.
		ctr.Status = engine.StatusCreated
		if rr.Exited {
			ctr.Status, ctr.ExitCode, ctr.FinishedAt = engine.StatusExited, rr.ExitCode, rr.FinishedAt
		}
	default:
		ctr.Status = engine.StatusUnknown
	}
}
