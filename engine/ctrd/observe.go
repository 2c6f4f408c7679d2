package ctrd

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/api/services/tasks/v1"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/errdefs"
	"github.com/containerd/errdefs/pkg/errgrpc"

	"github.com/stackdev/stack/engine"
)

// Observe reads the live state with one containers list (filtered by the
// project label, or every stack container for ""), the run records, the
// network and volume records, and the tasks of the containers whose run
// record cannot vouch for them. Networks and volumes are returned for
// every project, so that external ones (created by another project) are
// visible: filter them by Project.
//
// containerd 1.6 answers a task's state by asking its shim, one process
// wake-up each, and its tasks list asks every shim of the namespace in
// turn: about 0.3 ms of CPU per task, most of a no-op up's time with 30
// services. A run whose init process the kernel shows alive, under the
// same shim, with its cgroup thawed (hostProc.runs) is running without
// asking; the others (stopped, paused, exited, started before stack
// recorded its process) are asked for one by one, in parallel.
func (c *Client) Observe(ctx context.Context, project string) (engine.State, error) {
	filter := fmt.Sprintf("labels.%q", engine.LabelName)
	if project != "" {
		filter = fmt.Sprintf("labels.%q==%s", engine.LabelProject, strconv.Quote(project))
	}
	var (
		images   map[string]string
		imageErr error
		imagesIn = make(chan struct{})
		st       engine.State
	)
	go func() {
		defer close(imagesIn)
		images, imageErr = c.ImageDigests(ctx)
	}()
	list, listErr := c.ctr.ContainerService().List(ctx, filter)
	recordsErr := c.observeRecords(&st)
	var (
		decoded    []decodedContainer
		procs      map[string]*task.Process
		unanswered map[string]bool
		taskErr    error
	)
	if listErr == nil {
		boot := c.host.bootID()
		decoded = c.decodeContainers(list, boot)
		procs, unanswered, taskErr = c.tasksOf(ctx, decoded)
		if taskErr == nil {
			taskErr = c.settleBehindRecords(ctx, decoded, boot, procs, unanswered)
		}
	}
	<-imagesIn
	if listErr != nil {
		return engine.State{}, fmt.Errorf("observe: list containers: %w", listErr)
	}
	if err := cmp.Or(taskErr, imageErr, recordsErr); err != nil {
		return engine.State{}, err
	}
	st.Containers = c.withTasks(decoded, procs, unanswered)
	st.Images = images
	return st, nil
}

// taskAsks bounds the task Gets in flight at once: each wakes one shim.
const taskAsks = 16

// tasksOf is the task of each decoded container: running, from its run
// record when the kernel vouches for it, else as containerd answers (no
// entry: no task). A container whose task could not be asked is returned
// in unanswered, so that one broken shim leaves one container's state
// unknown rather than failing the whole observation; containerd itself
// unreachable, or ctx ended, does fail it (askFailed).
func (c *Client) tasksOf(ctx context.Context, decoded []decodedContainer) (map[string]*task.Process, map[string]bool, error) {
	procs := make(map[string]*task.Process, len(decoded))
	var ask []engine.Container
	for _, d := range decoded {
		if d.vouched != nil {
			procs[d.ctr.ID] = d.vouched
			continue
		}
		ask = append(ask, d.ctr)
	}
	errs := make([]error, len(ask))
	asked := make([]*task.Process, len(ask))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(taskAsks, len(ask)) {
		wg.Go(func() {
			for i := range next {
				asked[i], errs[i] = c.getTask(ctx, ask[i].ID)
			}
		})
	}
	for i := range ask {
		next <- i
	}
	close(next)
	wg.Wait()
	unanswered := map[string]bool{}
	for i, ctr := range ask {
		switch {
		case errs[i] == nil && asked[i] != nil:
			procs[ctr.ID] = asked[i]
		case errs[i] != nil:
			if err := c.askFailed(ctx, errs[i]); err != nil {
				return nil, nil, err
			}
			c.leaveUnknown(unanswered, ctr, errs[i])
		}
	}
	return procs, unanswered, nil
}

// askFailed tells an error that ends the observation (ctx ended,
// containerd unreachable) from one that leaves a single container
// unknown: a shim's own failure, which containerd may also report as
// unavailable, so containerd is asked whether it still answers.
func (c *Client) askFailed(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("observe: %w", ctx.Err())
	}
	if errdefs.IsUnavailable(err) && !c.serving(ctx) {
		return err
	}
	return nil
}

// leaveUnknown marks ctr's state unknown: its task did not answer.
func (c *Client) leaveUnknown(unanswered map[string]bool, ctr engine.Container, err error) {
	c.opts.Logger.Warn("observe: a task did not answer; its container's state is unknown", "container", ctr.Name, "err", err)
	unanswered[ctr.ID] = true
}

// vouchedTask is the running task that container id's run record and the
// kernel vouch for, or nil when containerd must be asked.
func (c *Client) vouchedTask(id string, rr runRecord, boot string) *task.Process {
	if rr.Exited || rr.StartedAt.IsZero() || !c.host.runs(rr.Proc, boot) {
		return nil
	}
	return &task.Process{ID: id, Pid: uint32(rr.Proc.Pid), Status: task.Status_RUNNING}
}

// ObserveContainer observes one container alone, as Observe would show it
// in its State: one container Get and, unless its run record vouches for
// a running task, one task Get (one shim asked, not every one, and the
// record read again meanwhile: taskOrRecord) sent at the same time, so its
// cost does not grow with the number of containers. A
// container that is gone, or is not a stack container, is an error that
// errdefs.IsNotFound recognises.
func (c *Client) ObserveContainer(ctx context.Context, id string) (engine.Container, error) {
	boot := c.host.bootID()
	rr, _ := c.loadRun(id)
	vouched := c.vouchedTask(id, rr, boot)
	var (
		proc    = vouched
		taskErr error
		asked   = make(chan struct{})
	)
	if proc == nil {
		go func() { // the shim's answer is most of the time: ask it meanwhile
			defer close(asked)
			rr, vouched, proc, taskErr = c.taskOrRecord(ctx, id, rr, boot)
		}()
	} else {
		close(asked)
	}
	info, err := c.ctr.ContainerService().Get(ctx, id)
	<-asked
	if err != nil {
		return engine.Container{}, fmt.Errorf("observe container %s: %w", id, err)
	}
	if taskErr != nil {
		return engine.Container{}, taskErr
	}
	d := c.decodeRun(info, rr, vouched)
	if d.ctr.Name == "" {
		return engine.Container{}, fmt.Errorf("observe container %s: not a stack container: %w", id, errdefs.ErrNotFound)
	}
	if taskAndRecordDisagree(proc, d.run) {
		if d, proc, err = c.readAgain(ctx, d, boot); err != nil {
			return engine.Container{}, err
		}
	}
	out := c.withTasks([]decodedContainer{d}, map[string]*task.Process{id: proc}, nil)
	return out[0], nil
}

// recordPoll is how often taskOrRecord reads the run record again.
const recordPoll = 2 * time.Millisecond

// taskOrRecord asks containerd for container id's task and, until it
// answers, reads the run record again every recordPoll: the first to tell
// is the answer, with the record it goes with (rr when the task's answer
// came first) and the process the record vouches for (nil then). The
// daemon observes a container at its task's start event, before the start
// that caused it has recorded its run; during an `up` of 100 containers
// the shim, busy with the other starts, took 30-130 ms to answer, while
// the record was written within a few.
func (c *Client) taskOrRecord(ctx context.Context, id string, rr runRecord, boot string) (runRecord, *task.Process, *task.Process, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type answer struct {
		proc *task.Process
		err  error
	}
	asked := make(chan answer, 1)
	go func() {
		proc, err := c.getTask(ctx, id)
		asked <- answer{proc, err}
	}()
	poll := time.NewTicker(recordPoll)
	defer poll.Stop()
	// The record on disk now is taken to be rr, read just before: one
	// written in between is left to the shim's answer, as before polling.
	seen, _ := os.Stat(c.runPath(id))
	for {
		select {
		case a := <-asked:
			return rr, nil, a.proc, a.err
		case <-poll.C:
			// Read only a record written since (each write renames a new
			// file in): after an exit, or for a task started by hand,
			// none will vouch.
			fi, err := os.Stat(c.runPath(id))
			if err != nil || seen != nil && os.SameFile(fi, seen) {
				continue
			}
			seen = fi
			again, err := c.loadRun(id)
			if err != nil {
				continue
			}
			if vouched := c.vouchedTask(id, again, boot); vouched != nil {
				return again, vouched, vouched, nil
			}
		}
	}
}

// settleBehindRecords reads again the run record, then the task, of each
// container whose record says a run goes on while its task is missing or
// not started yet. The record was read before the task was asked for, and
// a stop, a restart or a start may have landed in between: a stop records
// the run's end before it deletes the task, a start saves the new run only
// once its task runs. Taken at its word, such a container would look like
// one whose task vanished with containerd, and the daemon would decide a
// restart for a run that ended normally or is in fact going on. Only
// containers in that state cost a second read; after a reboot that is
// every running one, once. A task that answers now is no longer
// unanswered; one that does not answer is, as in tasksOf.
func (c *Client) settleBehindRecords(ctx context.Context, decoded []decodedContainer, boot string, procs map[string]*task.Process, unanswered map[string]bool) error {
	for i, d := range decoded {
		if !taskAndRecordDisagree(procs[d.ctr.ID], d.run) {
			continue
		}
		again, proc, err := c.readAgain(ctx, d, boot)
		decoded[i] = again
		if err != nil {
			if fatal := c.askFailed(ctx, err); fatal != nil {
				return fatal
			}
			c.leaveUnknown(unanswered, d.ctr, err)
			continue
		}
		delete(unanswered, d.ctr.ID)
		procs[d.ctr.ID] = proc
	}
	return nil
}

// readAgain reads container d's run record again, then asks containerd
// for its task: in that order, as the writers order them, a change that
// lands between the two reads shows in the task as it does in the record.
func (c *Client) readAgain(ctx context.Context, d decodedContainer, boot string) (decodedContainer, *task.Process, error) {
	d = c.decodeContainer(d.info, boot)
	proc, err := c.getTask(ctx, d.ctr.ID)
	return d, proc, err
}

// taskAndRecordDisagree says whether the task and the run record may have
// been read on either side of a change: the record shows a run started and
// not ended, and the task is missing or not started.
func taskAndRecordDisagree(proc *task.Process, rr runRecord) bool {
	if rr.StartedAt.IsZero() || rr.Exited {
		return false
	}
	return proc == nil || proc.Status == task.Status_CREATED
}

// taskOf is the container's task from containerd, nil when it has none.
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

// containerdServes reports whether containerd answers at all.
func (c *Client) containerdServes(ctx context.Context) bool {
	_, err := c.ctr.Version(ctx)
	return err == nil
}

// decodedContainer is a container as its record and run record tell it,
// before its task's state is known.
type decodedContainer struct {
	info containers.Container // as listed, to decode it again
	ctr  engine.Container
	spec engine.ContainerSpec
	run  runRecord
	// vouched is the running task that the run record and the kernel
	// vouch for; nil when containerd must be asked.
	vouched *task.Process
}

// withTasks adds each task's state (and, for running containers, their
// health) to the decoded containers.
func (c *Client) withTasks(decoded []decodedContainer, procs map[string]*task.Process, unanswered map[string]bool) []engine.Container {
	out := make([]engine.Container, 0, len(decoded))
	for _, d := range decoded {
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

// decodeContainers decodes the stack containers of list on every CPU:
// decoding JSON, reading run records and asking the kernel about running
// ones is most of Observe's own time. Others (no name label) are left out.
func (c *Client) decodeContainers(list []containers.Container, boot string) []decodedContainer {
	out := make([]decodedContainer, len(list))
	var wg sync.WaitGroup
	workers := min(runtime.NumCPU(), len(list))
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(list); i += workers {
				out[i] = c.decodeContainer(list[i], boot)
			}
		}()
	}
	wg.Wait()
	return slices.DeleteFunc(out, func(d decodedContainer) bool { return d.ctr.Name == "" })
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

// decodeContainer decodes a container with its run record, and the task
// the kernel vouches for.
func (c *Client) decodeContainer(info containers.Container, boot string) decodedContainer {
	rr, _ := c.loadRun(info.ID)
	return c.decodeRun(info, rr, c.vouchedTask(info.ID, rr, boot))
}

// decodeRun decodes a container whose run record rr was read, and whose
// running task the kernel vouches for (nil: containerd must be asked).
func (c *Client) decodeRun(info containers.Container, rr runRecord, vouched *task.Process) decodedContainer {
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
	return decodedContainer{info: info, ctr: ctr, spec: spec, run: rr, vouched: vouched}
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
