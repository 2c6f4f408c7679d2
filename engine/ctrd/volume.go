package ctrd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/containerd/errdefs"

	"github.com/stackdev/stack/engine"
)

// volumeRecord is <state>/volumes/<name>/volume.json; the data is in
// <state>/volumes/<name>/_data.
type volumeRecord struct {
	Name       string            `json:"name"`
	Project    string            `json:"project,omitempty"`
	Key        string            `json:"key,omitempty"`
	ConfigHash string            `json:"configHash,omitempty"`
	DriverOpts map[string]string `json:"driverOpts,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Created    time.Time         `json:"created"`
}

func (c *Client) volumeDir(name string) string  { return c.stateDir(dirVolumes, name) }
func (c *Client) volumeData(name string) string { return c.stateDir(dirVolumes, name, "_data") }
func (c *Client) volumePath(name string) string { return c.stateDir(dirVolumes, name, "volume.json") }

// CreateVolume creates a named volume. An existing one wraps
// errdefs.ErrAlreadyExists; an external one must exist already.
func (c *Client) CreateVolume(ctx context.Context, spec engine.VolumeSpec) error {
	if err := checkName("volume", spec.Name); err != nil {
		return err
	}
	if spec.Driver != "" && spec.Driver != "local" {
		return fmt.Errorf("volume %s: driver %q is not supported (use local)", spec.Name, spec.Driver)
	}
	if _, err := c.loadVolume(spec.Name); err == nil {
		return fmt.Errorf("volume %s: %w", spec.Name, errdefs.ErrAlreadyExists)
	}
	if spec.External {
		return fmt.Errorf("volume %s is declared external but does not exist: create it first: %w", spec.Name, errdefs.ErrNotFound)
	}
	if err := checkDriverOpts(spec.DriverOpts); err != nil {
		return fmt.Errorf("volume %s: %w", spec.Name, err)
	}
	rec := volumeRecord{
		Name: spec.Name, Project: spec.Project, Key: spec.Key, ConfigHash: spec.ConfigHash,
		DriverOpts: spec.DriverOpts, Labels: spec.Labels, Created: time.Now().UTC(),
	}
	return c.writeVolume(ctx, rec)
}

func (c *Client) writeVolume(ctx context.Context, rec volumeRecord) error {
	if err := os.MkdirAll(c.volumeData(rec.Name), 0o755); err != nil {
		return fmt.Errorf("create volume %s: %w", rec.Name, err)
	}
	if err := writeJSON(c.volumePath(rec.Name), rec); err != nil {
		return fmt.Errorf("create volume %s: %w", rec.Name, err)
	}
	return nil
}

// ensureVolume returns the volume's record, creating a plain volume on
// first use as Docker does, and mounts it when its driver options ask for a
// filesystem. An anonymous volume (no name) belongs to the container's
// project, so `down -v` removes it with the project's named volumes.
func (c *Client) ensureVolume(ctx context.Context, name, project string) (volumeRecord, error) {
	owner := ""
	if name == "" {
		name, owner = newID(), project
	}
	if err := checkName("volume", name); err != nil {
		return volumeRecord{}, err
	}
	rec, err := c.loadVolume(name)
	if errdefs.IsNotFound(err) {
		rec = volumeRecord{Name: name, Project: owner, Created: time.Now().UTC()}
		err = c.writeVolume(ctx, rec)
	}
	if err != nil {
		return rec, err
	}
	return rec, c.mountVolume(rec)
}

// RemoveVolume unmounts and deletes the volume and its data. A missing
// volume is not an error; one in use by a container is.
func (c *Client) RemoveVolume(ctx context.Context, name string) error {
	if err := checkName("volume", name); err != nil {
		return err
	}
	rec, err := c.loadVolume(name)
	if errdefs.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	if users, err := c.volumeUsers(ctx, name); err != nil {
		return err
	} else if len(users) > 0 {
		return fmt.Errorf("volume %s is in use by container %s: remove it first: %w", name, strings.Join(users, ", "), errdefs.ErrFailedPrecondition)
	}
	if err := c.unmountVolume(rec); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if len(rec.DriverOpts) > 0 {
		// Never recurse into what was mounted there: only an empty
		// mount point may go.
		if err := os.Remove(c.volumeData(name)); err != nil && !isNotExist(err) {
			return fmt.Errorf("remove volume %s: %w", name, err)
		}
	}
	if err := os.RemoveAll(c.volumeDir(name)); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	return nil
}

func (c *Client) loadVolume(name string) (volumeRecord, error) {
	var rec volumeRecord
	err := readJSON(c.volumePath(name), &rec)
	if isNotExist(err) {
		return rec, fmt.Errorf("volume %s: %w", name, errdefs.ErrNotFound)
	}
	return rec, err
}

func (c *Client) listVolumes() ([]volumeRecord, error) {
	paths, err := filepath.Glob(c.stateDir(dirVolumes, "*", "volume.json"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var out []volumeRecord
	for _, p := range paths {
		var rec volumeRecord
		if err := readJSON(p, &rec); err == nil {
			out = append(out, rec)
		}
	}
	return out, nil
}

// volumeUsers lists the containers (by name) whose spec mounts the volume.
func (c *Client) volumeUsers(ctx context.Context, name string) ([]string, error) {
	st, err := c.Observe(ctx, "")
	if err != nil {
		return nil, err
	}
	var users []string
	for _, ctr := range st.Containers {
		for _, v := range ctr.Volumes {
			if v == name {
				users = append(users, ctr.Name)
			}
		}
	}
	return users, nil
}

func (r volumeRecord) observed(c *Client) engine.Volume {
	return engine.Volume{
		Name: r.Name, Project: r.Project, ConfigHash: r.ConfigHash,
		Mountpoint: c.volumeData(r.Name), Labels: r.Labels,
	}
}
