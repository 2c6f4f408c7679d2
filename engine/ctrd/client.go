package ctrd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/containerd/containerd/api/types/task"
	containerd "github.com/containerd/containerd/v2/client"
)

// Defaults match what a user of containerd expects on a Debian host.
const (
	DefaultAddress   = "/run/containerd/containerd.sock"
	DefaultNamespace = "stack"
	DefaultStateDir  = "/var/lib/stack"
	// runcRoot keeps our runc state apart from any other containerd on the host
	// (containerd 1.6 otherwise shares /run/containerd/runc/<ns>).
	runcRoot = "/run/stack-runc"
)

// Options configure a Client.
type Options struct {
	Address   string // containerd socket
	Namespace string
	StateDir  string // networks, volumes, leases, logs
	// Snapshotter is chosen automatically (overlayfs, else native) when empty.
	Snapshotter string
	// CNIPluginDirs are searched for CNI plugins.
	CNIPluginDirs []string
	Logger        *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Address == "" {
		o.Address = DefaultAddress
	}
	if o.Namespace == "" {
		o.Namespace = DefaultNamespace
	}
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	if len(o.CNIPluginDirs) == 0 {
		o.CNIPluginDirs = []string{"/usr/lib/cni", "/opt/cni/bin"}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Client talks to one containerd namespace.
type Client struct {
	ctr    *containerd.Client
	opts   Options
	probes probeTargets
	// fifoDir is where exec FIFOs go (execFIFODir), chosen once.
	fifoOnce sync.Once
	fifoDir  string
	// containersOnce prepares the parent of the containers' state
	// directories (makeContainerDir).
	containersOnce sync.Once
	// images holds what containers of an image need from it (imageFacts).
	images imageFactsCache
	// host is where a run is vouched for without its shim (proc_live.go);
	// getTask and serving ask containerd, and tests of observe replace them.
	host    hostProc
	getTask func(ctx context.Context, id string) (*task.Process, error)
	serving func(ctx context.Context) bool
}

// ErrUnreachable means nothing answered on the containerd address.
var ErrUnreachable = errors.New("containerd is not reachable")

// New connects to containerd and checks that it answers. containerd.New
// dials lazily, so the Version call is what proves the daemon is there.
func New(ctx context.Context, opts Options) (*Client, error) {
	opts = opts.withDefaults()
	ctr, err := connect(ctx, opts)
	if err != nil {
		return nil, err
	}
	return newClient(ctr, opts)
}

func connect(ctx context.Context, opts Options) (*containerd.Client, error) {
	ctr, err := containerd.New(opts.Address, containerd.WithDefaultNamespace(opts.Namespace))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd at %s: %w", opts.Address, err)
	}
	probeCtx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := ctr.Version(probeCtx); err != nil {
		ctr.Close()
		return nil, fmt.Errorf("%w at %s (start it, or set --address / STACK_CONTAINERD_ADDRESS): %v", ErrUnreachable, opts.Address, err)
	}
	return ctr, nil
}

func newClient(ctr *containerd.Client, opts Options) (*Client, error) {
	if err := os.MkdirAll(opts.StateDir, 0o711); err != nil {
		ctr.Close()
		return nil, fmt.Errorf("create state directory: %w", err)
	}
	c := &Client{ctr: ctr, opts: opts, host: realHost}
	c.getTask, c.serving = c.taskOf, c.containerdServes
	return c, nil
}

// Dialing is a connection to containerd on its way: a command dials first
// and loads its project meanwhile. Dialing only reads; the host changes
// (the state directory is created) only when Client is called.
type Dialing struct {
	opts Options
	done chan struct{}
	ctr  *containerd.Client
	err  error
}

// Dial starts connecting to containerd; ctx must last until Client or
// Abandon.
func Dial(ctx context.Context, opts Options) *Dialing {
	d := &Dialing{opts: opts.withDefaults(), done: make(chan struct{})}
	go func() {
		defer close(d.done)
		d.ctr, d.err = connect(ctx, d.opts)
	}()
	return d
}

// Client waits for the connection, as New would have made it.
func (d *Dialing) Client() (*Client, error) {
	<-d.done
	if d.err != nil {
		return nil, d.err
	}
	return newClient(d.ctr, d.opts)
}

// Abandon closes the connection once made: the command ended before it
// needed containerd.
func (d *Dialing) Abandon() {
	<-d.done
	if d.ctr != nil {
		d.ctr.Close()
	}
}

// Close releases the connection.
func (c *Client) Close() error { return c.ctr.Close() }

// Namespace is the containerd namespace in use.
func (c *Client) Namespace() string { return c.opts.Namespace }

// Address is the containerd socket in use.
func (c *Client) Address() string { return c.opts.Address }

// ServerVersion returns containerd's version string.
func (c *Client) ServerVersion(ctx context.Context) (string, error) {
	v, err := c.ctr.Version(ctx)
	if err != nil {
		return "", fmt.Errorf("containerd version: %w", err)
	}
	return v.Version, nil
}

func (c *Client) stateDir(parts ...string) string {
	return filepath.Join(append([]string{c.opts.StateDir}, parts...)...)
}
