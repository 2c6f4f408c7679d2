package ctrd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// netnsDir is where `ip netns` looks, so `ip netns list` shows ours.
const netnsDir = "/var/run/netns"

// netnsPath is the container's network namespace bind mount. It is derived
// from the ID so that a crashed run can always find and remove it.
func netnsPath(id string) string {
	if len(id) > 24 {
		id = id[:24]
	}
	return filepath.Join(netnsDir, "stack-"+id)
}

// createNetNS creates a network namespace with loopback up and bind-mounts
// it at path. It runs on a locked OS thread that enters the new namespace
// and returns to the original one; if it cannot return, the thread stays
// locked and dies with the goroutine. (A thread left in the namespace could
// be the process's main thread, which Go never terminates.)
func createNetNS(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("create netns mount point: %w", err)
	}
	f.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- inNewNetNS(path)
	}()
	if err := <-errc; err != nil {
		_ = unix.Unmount(path, unix.MNT_DETACH)
		_ = os.Remove(path)
		return fmt.Errorf("create netns %s: %w", path, err)
	}
	return nil
}

// inNewNetNS runs on a locked thread: it unshares, mounts the new namespace
// at path, brings loopback up and goes back to the original namespace,
// unlocking the thread only then.
func inNewNetNS(path string) error {
	origin, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return err
	}
	defer origin.Close()
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	err = enterNewNetNS(path)
	if serr := unix.Setns(int(origin.Fd()), unix.CLONE_NEWNET); serr != nil {
		return errors.Join(err, fmt.Errorf("return to the original netns: %w", serr))
	}
	runtime.UnlockOSThread()
	return err
}

func enterNewNetNS(path string) error {
	src := fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid())
	if err := unix.Mount(src, path, "none", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mount: %w", err)
	}
	return loopbackUp()
}

func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	return nil
}

// removeNetNS unmounts and deletes the bind mount; a missing one is fine.
func removeNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount netns %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !isNotExist(err) {
		return fmt.Errorf("remove netns %s: %w", path, err)
	}
	return nil
}

// netnsExists reports whether path is a mounted namespace (not just the
// empty file left by a crash between create and mount).
func netnsExists(path string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false
	}
	return st.Type == unix.NSFS_MAGIC
}
