package ctrd

import (
	"context"
	"sync"
)

// Snapshotter names containerd ships and that stack chooses between.
const (
	SnapshotterOverlay = "overlayfs"
	SnapshotterNative  = "native"
)

// snapshotterChoice remembers the choice per containerd address: the answer
// does not change while the daemon runs, and asking costs a round trip.
var snapshotterChoice sync.Map // address → snapshotter name

// Snapshotter is the snapshotter images are unpacked into and containers run
// on: the one set in Options, else overlayfs when containerd loaded it (its
// plugin checks that the backing filesystem supports overlay), else native.
func (c *Client) Snapshotter(ctx context.Context) string {
	if c.opts.Snapshotter != "" {
		return c.opts.Snapshotter
	}
	if name, ok := snapshotterChoice.Load(c.opts.Address); ok {
		return name.(string)
	}
	name := SnapshotterNative
	if c.snapshotterWorks(ctx, SnapshotterOverlay) {
		name = SnapshotterOverlay
	}
	snapshotterChoice.Store(c.opts.Address, name)
	return name
}

// snapshotterWorks reports whether containerd loaded the snapshotter plugin
// without an initialisation error.
func (c *Client) snapshotterWorks(ctx context.Context, name string) bool {
	resp, err := c.ctr.IntrospectionService().Plugins(ctx, "type==io.containerd.snapshotter.v1,id=="+name)
	if err != nil || len(resp.Plugins) == 0 {
		return false
	}
	return resp.Plugins[0].GetInitErr() == nil
}
