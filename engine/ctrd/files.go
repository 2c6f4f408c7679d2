package ctrd

import (
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/stackdev/stack/engine"
)

// writeFiles materialises secrets and configs under the container's state
// directory with their owner and mode, and returns read-only bind mounts of
// them at their targets.
func (c *Client) writeFiles(id string, files []engine.File) ([]specs.Mount, error) {
	if len(files) == 0 {
		return nil, nil
	}
	dir := c.containerDir(id, "files")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	var out []specs.Mount
	for i, f := range files {
		if !filepath.IsAbs(f.Target) {
			return nil, fmt.Errorf("%s %s: target %q is not an absolute path", f.Kind, f.Name, f.Target)
		}
		path := filepath.Join(dir, fmt.Sprintf("%d-%s-%s", i, f.Kind, filepath.Base(f.Target)))
		if err := writeOwned(path, f); err != nil {
			return nil, fmt.Errorf("%s %s: %w", f.Kind, f.Name, err)
		}
		out = append(out, specs.Mount{Type: "bind", Source: path, Destination: f.Target, Options: []string{"rbind", "ro", "rprivate"}})
	}
	return out, nil
}

func writeOwned(path string, f engine.File) error {
	mode := os.FileMode(f.Mode)
	if mode == 0 {
		mode = 0o444
	}
	if err := os.WriteFile(path, f.Content, 0o600); err != nil {
		return err
	}
	if err := os.Chown(path, f.UID, f.GID); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}
