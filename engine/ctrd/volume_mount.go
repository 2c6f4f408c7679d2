package ctrd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/containerd/v2/core/mount"
	"github.com/containerd/continuity/fs"
	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/stackdev/stack/engine"
)

// mountFlags are the options of the local driver's "o" that are mount
// flags; the others are passed to the filesystem as data.
var mountFlags = map[string]uintptr{
	"bind": unix.MS_BIND, "rbind": unix.MS_BIND | unix.MS_REC, "ro": unix.MS_RDONLY,
	"nosuid": unix.MS_NOSUID, "nodev": unix.MS_NODEV, "noexec": unix.MS_NOEXEC,
	"rw": 0, "defaults": 0,
}

// checkDriverOpts accepts the local driver's type, device and o.
func checkDriverOpts(opts map[string]string) error {
	for k := range opts {
		if k != "type" && k != "device" && k != "o" {
			return fmt.Errorf("driver_opts %q is not supported by the local driver (use type, device and o)", k)
		}
	}
	if len(opts) > 0 && opts["type"] == "" {
		return fmt.Errorf("driver_opts needs a type (none with o: bind, tmpfs, or a filesystem)")
	}
	if strings.Contains(opts["o"], "bind") && !filepath.IsAbs(opts["device"]) {
		return fmt.Errorf("driver_opts device %q must be an absolute path for a bind volume", opts["device"])
	}
	return nil
}

// mountVolume mounts a volume with driver options on its _data directory,
// unless it already is.
func (c *Client) mountVolume(rec volumeRecord) error {
	if len(rec.DriverOpts) == 0 {
		return nil
	}
	target := c.volumeData(rec.Name)
	if ok, err := mountinfo.Mounted(target); err == nil && ok {
		return nil
	}
	var flags uintptr
	var data []string
	for _, o := range strings.Split(rec.DriverOpts["o"], ",") {
		if o == "" {
			continue
		}
		if f, ok := mountFlags[o]; ok {
			flags |= f
		} else {
			data = append(data, o)
		}
	}
	typ, device := rec.DriverOpts["type"], rec.DriverOpts["device"]
	if typ == "none" {
		typ = ""
	}
	if device == "" {
		device = typ
	}
	if err := unix.Mount(device, target, typ, flags, strings.Join(data, ",")); err != nil {
		return fmt.Errorf("mount volume %s (%s %s): %w", rec.Name, rec.DriverOpts["type"], device, err)
	}
	return nil
}

func (c *Client) unmountVolume(rec volumeRecord) error {
	target := c.volumeData(rec.Name)
	for {
		ok, err := mountinfo.Mounted(target)
		if isNotExist(err) || (err == nil && !ok) {
			return nil
		} else if err != nil {
			return err
		}
		if err := unix.Unmount(target, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
}

// copyUpVolumes copies the image's content at each named volume's mount
// point into the volume when the volume is empty, unless nocopy, as Docker
// does on first use.
func (c *Client) copyUpVolumes(ctx context.Context, id string, spec engine.ContainerSpec) error {
	for _, m := range spec.Mounts {
		if m.Type != engine.MountVolume || m.NoCopy || m.Source == "" {
			continue
		}
		data := c.volumeData(m.Source)
		if entries, err := os.ReadDir(data); err != nil || len(entries) > 0 {
			continue
		}
		if err := c.copyFromSnapshot(ctx, id, m.Target, data); err != nil {
			return fmt.Errorf("volume %s: copy image content at %s: %w", m.Source, m.Target, err)
		}
	}
	return nil
}

func (c *Client) copyFromSnapshot(ctx context.Context, id, target, dst string) error {
	mounts, err := c.ctr.SnapshotService(c.Snapshotter(ctx)).Mounts(ctx, id)
	if err != nil {
		return err
	}
	return mount.WithReadonlyTempMount(ctx, mounts, func(root string) error {
		src, err := fs.RootPath(root, target)
		if err != nil {
			return err
		}
		st, err := os.Stat(src)
		if err != nil || !st.IsDir() {
			return nil // nothing in the image there
		}
		return fs.CopyDir(dst, src)
	})
}
