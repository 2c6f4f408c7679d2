package ctrd

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"

	"github.com/stackdev/stack/engine"
)

// Client is the containerd implementation of engine.Driver.
var _ engine.Driver = (*Client)(nil)

// Paths under the state directory. Everything stack writes on the host,
// apart from bridges, netns bind mounts and iptables rules, lives here.
const (
	dirContainers = "containers"
	dirNetworks   = "networks"
	dirVolumes    = "volumes"
	dirIPAM       = "ipam"     // under networks: host-local leases
	dirCNICache   = "cnicache" // under networks: libcni result cache
)

// validName is the shape Docker accepts for volume and network names. It
// keeps a name from leaving the state directory ("..", "/").
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

func checkName(kind, name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("invalid %s name %q: use letters, digits, '_', '.' and '-', starting with a letter or digit", kind, name)
	}
	return nil
}

// newID returns a fresh 64-hex container ID, as Docker does.
func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// writeJSON writes v to path atomically (temp file and rename), so a crash
// leaves either the old record or the new one.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o711); err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// readJSON reads path into v. A missing file wraps fs.ErrNotExist.
func readJSON(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	return nil
}

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
