package ctrd

import (
	"os"

	"golang.org/x/sys/unix"
)

// fsTopDirFlag is FS_TOPDIR_FL from linux/fs.h (chattr +T), which
// golang.org/x/sys/unix does not define.
const fsTopDirFlag = 0x00020000

// spreadSubdirectories marks dir as the top of unrelated directory trees, so
// that ext4's Orlov allocator places each new subdirectory, and the files
// made in it, in a block group chosen by its name rather than next to its
// siblings'.
//
// Container directories come and go by the dozen with every up and down.
// Kept in one block group, each new file there searches for a free inode
// past the ones its predecessors freed, which ext4 without a journal does
// not reuse for a minute or more (recently_deleted in fs/ext4/ialloc.c):
// on this project's CI machines that search was a tenth of all CPU time
// during a cold `up` of 30 services, containerd's own files included, as
// they shared the group. Filesystems without the flag refuse it, and
// nothing changes; directories made before it keep their place.
func spreadSubdirectories(dir string) {
	f, err := os.Open(dir)
	if err != nil {
		return
	}
	defer f.Close()
	fd := int(f.Fd())
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil || flags&fsTopDirFlag != 0 {
		return
	}
	_ = unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags|fsTopDirFlag))
}

// makeContainerDir creates the container's state directory (0711, as its
// parent), under a containers directory whose subdirectories are spread.
func (c *Client) makeContainerDir(id string) error {
	c.containersOnce.Do(func() {
		parent := c.stateDir(dirContainers)
		if os.MkdirAll(parent, 0o711) == nil {
			spreadSubdirectories(parent)
		}
	})
	return os.MkdirAll(c.containerDir(id), 0o711)
}
