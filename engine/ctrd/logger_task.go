package ctrd

import (
	"github.com/stackdev/stack/engine/jsonfile"

	"fmt"
	"net/url"

	"github.com/containerd/containerd/v2/pkg/cio"

	"github.com/stackdev/stack/engine"
)

// jsonLogIO hands the task's stdout and stderr (or, with a TTY, the
// terminal's output) to the stack binary as containerd's logging binary.
// The shim, not this process, owns the logger, so logs outlive the CLI; the
// file is appended to, so they survive restarts. Bad logging.options fail
// the task's creation with the option named.
func (c *Client) jsonLogIO(id string, spec engine.ContainerSpec) cio.Creator {
	return func(string) (cio.IO, error) {
		cfg, err := ParseLogConfig(c.LogPath(id), spec.Logging)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", spec.Service, err)
		}
		bin, err := logBinary()
		if err != nil {
			return nil, err
		}
		u := url.URL{Scheme: "binary", Path: bin, RawQuery: url.Values{jsonfile.DriverCommand: {cfg.Encode()}}.Encode()}
		return &fileIO{cfg: cio.Config{Terminal: spec.Process.TTY, Stdout: u.String(), Stderr: u.String()}}, nil
	}
}
