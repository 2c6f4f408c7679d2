package ctrd

import (
	"context"
	"fmt"
	"time"

	"github.com/containerd/containerd/v2/core/leases"
)

// withLease holds everything an image operation writes under one lease.
// release drops it; after a failure it waits for the garbage collector, so
// the blobs of a half-done load, import or pull are gone when the command
// returns, not some time later.
func (c *Client) withLease(ctx context.Context) (context.Context, func(failed bool), error) {
	ls := c.ctr.LeasesService()
	l, err := ls.Create(ctx, leases.WithRandomID(), leases.WithExpiration(24*time.Hour))
	if err != nil {
		return ctx, nil, fmt.Errorf("create lease: %w", err)
	}
	release := func(failed bool) {
		var opts []leases.DeleteOpt
		if failed {
			opts = append(opts, leases.SynchronousDelete)
		}
		if err := ls.Delete(context.WithoutCancel(ctx), l, opts...); err != nil {
			c.opts.Logger.Warn("release lease", "lease", l.ID, "error", err)
		}
	}
	return leases.WithLease(ctx, l.ID), release, nil
}
