package ctrd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/mount"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/stackdev/stack/engine"
)

// withContainerRoot hands fn the container's root: for a running (or
// paused) task the root its processes see, /proc/<pid>/root, with every
// mount of the container; otherwise its snapshot mounted read-write on a
// temporary directory, with its volumes and bind mounts on top.
func (c *Client) withContainerRoot(ctx context.Context, id string, fn func(*cpRoot) error) error {
	task, st, err := c.liveTask(ctx, id)
	if err != nil && !errors.Is(err, ErrNotRunning) {
		return fmt.Errorf("container %s: %w", id, err)
	}
	if err == nil && (st == containerd.Running || st == containerd.Paused) && task.Pid() > 0 {
		root, err := openCpRoot("/proc/"+strconv.Itoa(int(task.Pid()))+"/root", false)
		if err != nil {
			return fmt.Errorf("container %s: %w", id, err)
		}
		defer root.Close()
		// The PID read before the open could have exited and been reused.
		if _, st2, err := c.liveTask(ctx, id); err != nil || st2 != st {
			return fmt.Errorf("container %s: its task stopped during the copy: try again", id)
		}
		return fn(root)
	}
	return c.withStoppedRoot(ctx, id, fn)
}

// withStoppedRoot mounts the container's snapshot and its volume and bind
// mounts (tmpfs mounts have no content while stopped), calls fn, and
// unmounts it all.
func (c *Client) withStoppedRoot(ctx context.Context, id string, fn func(*cpRoot) error) (retErr error) {
	info, err := c.ctr.ContainerService().Get(ctx, id)
	if err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	mounts, err := c.ctr.SnapshotService(info.Snapshotter).Mounts(ctx, info.SnapshotKey)
	if err != nil {
		return fmt.Errorf("container %s: its filesystem: %w", id, err)
	}
	dir, err := os.MkdirTemp("", "stack-cp-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	if err := c.mountRootfs(id, mounts, dir); err != nil {
		return fmt.Errorf("container %s: mount its filesystem: %w", id, err)
	}
	// A lazy unmount of the top takes the mounts below along.
	defer func() {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil && retErr == nil {
			retErr = fmt.Errorf("container %s: unmount its filesystem from %s: %w", id, dir, err)
		}
	}()
	root, err := openCpRoot(dir, false)
	if err != nil {
		return err
	}
	defer root.Close()
	spec, err := c.loadSpec(ctx, id)
	if err != nil {
		return err
	}
	for _, m := range spec.Mounts {
		if err := c.bindInRoot(root, m); err != nil {
			return fmt.Errorf("container %s: mount %s: %w", id, m.Target, err)
		}
	}
	return fn(root)
}

// mountRootfs mounts the container's filesystem on dir. An exited task
// not yet deleted keeps its rootfs mounted in its bundle; that mount is
// bound rather than the snapshot mounted a second time (overlayfs warns
// that two mounts of one upper directory behave undefined).
func (c *Client) mountRootfs(id string, mounts []mount.Mount, dir string) error {
	suffix := "/io.containerd.runtime.v2.task/" + c.opts.Namespace + "/" + id + "/rootfs"
	found, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return !strings.HasSuffix(m.Mountpoint, suffix), false
	})
	if err == nil && len(found) > 0 {
		return unix.Mount(found[0].Mountpoint, dir, "", unix.MS_BIND, "")
	}
	return mount.All(mount.RemoveVolatileOption(mounts), dir)
}

// bindInRoot mounts a volume or bind mount's host directory on its target
// inside root, as the running container would see it. The target is
// resolved inside root and mounted through its fd.
func (c *Client) bindInRoot(root *cpRoot, m engine.Mount) error {
	var source string
	switch m.Type {
	case engine.MountVolume:
		if m.Source == "" {
			return nil
		}
		source = c.volumeData(m.Source)
	case engine.MountBind:
		source = m.Source
	default:
		return nil
	}
	st, err := os.Stat(source)
	if err != nil {
		return nil // created by the next start; nothing to see meanwhile
	}
	var fd int
	if st.IsDir() {
		fd, err = root.mkdirAll(m.Target, 0, 0)
	} else {
		fd, err = root.open(m.Target, unix.O_PATH, true)
		if err == unix.ENOENT {
			return nil
		}
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.Mount(source, procFdPath(fd), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	if !m.ReadOnly {
		return nil
	}
	// As in the running container: a read-only mount refuses the copy.
	mfd, err := root.open(m.Target, unix.O_PATH, true)
	if err != nil {
		return err
	}
	defer unix.Close(mfd)
	return unix.Mount("", procFdPath(mfd), "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, "")
}
