package ctrd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// LockProject takes the per-project lock that serialises commands which
// change a project. When another command holds it, onWait is called once
// (to tell the user) and LockProject waits until the lock is free or ctx
// ends. Read-only commands never take it.
func (c *Client) LockProject(ctx context.Context, project string, onWait func()) (unlock func(), err error) {
	return lockFile(ctx, c.stateDir("locks", c.opts.Namespace+"-"+project+".lock"), onWait)
}

func lockFile(ctx context.Context, path string, onWait func()) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create lock directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock %s: %w", path, err)
	}
	waited := false
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if !waited && onWait != nil {
			onWait()
		}
		waited = true
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	// The kernel drops a flock when its holder dies, so a killed command
	// never leaves the project locked.
	return func() { f.Close() }, nil
}
