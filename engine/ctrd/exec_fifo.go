package ctrd

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// execFIFODir holds exec processes' FIFOs. The daemon's healthchecks exec
// several times a second, and creating and removing FIFOs on a journalled
// file system (the state directory's, usually) costs more CPU than the exec
// request itself, so a tmpfs is preferred: /run, else /dev/shm, one
// directory per state directory. The FIFOs live only while their exec does.
func (c *Client) execFIFODir() string {
	c.fifoOnce.Do(func() {
		c.fifoDir = c.stateDir(dirFIFO)
		sum := sha256.Sum256([]byte(c.opts.StateDir))
		for _, base := range []string{"/run", "/dev/shm"} {
			var st unix.Statfs_t
			if unix.Statfs(base, &st) == nil && st.Type == unix.TMPFS_MAGIC {
				c.fifoDir = filepath.Join(base, "stack-fifo", hex.EncodeToString(sum[:6]))
				return
			}
		}
	})
	return c.fifoDir
}
