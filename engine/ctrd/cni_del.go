package ctrd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// DEL of an attachment that bridgeOnly accepts runs in process (see
// cni_inprocess.go). What the plugins do on DEL is done the same way, on
// the same files:
//
//   - bridge: delete the container's interface inside its netns, which takes
//     the veth's host end off the bridge with it; nothing when the netns is
//     gone; no iptables work without ipMasq;
//   - host-local: under its lock (flock of <dataDir>/<network>/lock), remove
//     the lease files holding "<id>\r\n<ifname>", or "<id>" as older
//     versions wrote them;
//   - libcni: remove the cached result of an ADD the plugins made.

// delInProcess detaches the attachment as its plugins' DEL would; nsPath
// is empty when the netns is already gone.
func (c *Client) delInProcess(d bridgeOnly, id, nsPath, ifName string) error {
	if nsPath != "" {
		if err := deleteLinkIn(nsPath, ifName); err != nil {
			return err
		}
	}
	if err := releaseLeases(d.leaseDir, id, ifName); err != nil {
		return err
	}
	cached := filepath.Join(c.stateDir(dirNetworks, dirCNICache), "results", fmt.Sprintf("%s-%s-%s", d.network, id, ifName))
	if err := os.Remove(cached); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// deleteLinkIn deletes the interface ifName in the netns at nsPath; one
// that is not there is already deleted, and so is a netns that is gone.
func deleteLinkIn(nsPath, ifName string) error {
	r, err := rtnlIn(nsPath, nil)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", nsPath, err)
	}
	defer r.close()
	if err := r.deleteLink(ifName); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s in %s: %w", ifName, nsPath, err)
	}
	return nil
}
