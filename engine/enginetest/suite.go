package enginetest

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/containerd/errdefs"

	"github.com/stackdev/stack/engine"
)

// SuiteOptions describe what the suite may run on the driver under test.
type SuiteOptions struct {
	// Image is a reference the driver can pull (or already has) and run,
	// e.g. docker.io/library/busybox:latest.
	Image string
	// Command keeps a container of Image running, e.g. ["sleep", "3600"].
	Command []string
	// Pull is the policy the suite pulls Image with; missing when empty, so
	// a preloaded image works offline.
	Pull engine.PullPolicy
	// StopTimeout bounds each stop; 2s when zero.
	StopTimeout time.Duration
}

// RunDriverSuite checks the behaviour the reconciler relies on. newDriver
// returns a driver on a clean engine (a fresh namespace for a real one); each
// subtest calls it once and removes what it created.
//
// The containerd driver starts os.Executable as each task's log driver
// unless STACK_LOG_DRIVER_BINARY names the stack binary: in a test binary
// that would run the tests again from every container. Set it (the
// integration harness has the binary) before running this suite there.
func RunDriverSuite(t *testing.T, newDriver func(t *testing.T) engine.Driver, opts SuiteOptions) {
	if opts.Image == "" {
		t.Fatal("enginetest: SuiteOptions.Image is required")
	}
	if opts.Pull == "" {
		opts.Pull = engine.PullMissing
	}
	if opts.StopTimeout == 0 {
		opts.StopTimeout = 2 * time.Second
	}
	tests := []struct {
		name string
		run  func(*suite)
	}{
		{"PullImage", testPullImage},
		{"Networks", testNetworks},
		{"Volumes", testVolumes},
		{"ContainerLifecycle", testContainerLifecycle},
		{"ContainerOnNetworkWithVolume", testContainerAttachments},
		{"Rename", testRename},
		{"MissingContainer", testMissingContainer},
		{"ObserveScope", testObserveScope},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &suite{t: t, d: newDriver(t), opts: opts, project: projectName(t)}
			s.ctx = t.Context()
			tc.run(s)
		})
	}
}

// suite is one subtest's driver, project and cleanup list.
type suite struct {
	t       *testing.T
	ctx     context.Context
	d       engine.Driver
	opts    SuiteOptions
	project string
}

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// projectName derives a short project name from the test's name.
func projectName(t *testing.T) string {
	name := nonName.ReplaceAllString(strings.ToLower(t.Name()), "")
	if len(name) > 24 {
		name = name[len(name)-24:]
	}
	return "s" + name
}

// pull makes the suite's image present and returns its digest.
func (s *suite) pull() string {
	s.t.Helper()
	digest, err := s.d.PullImage(s.ctx, s.opts.Image, engine.PullOptions{Policy: s.opts.Pull})
	if err != nil {
		s.t.Fatalf("PullImage(%s): %v", s.opts.Image, err)
	}
	if digest == "" {
		s.t.Fatalf("PullImage(%s) returned an empty digest", s.opts.Image)
	}
	return digest
}

func (s *suite) networkSpec(key string) engine.NetworkSpec {
	name := s.project + "_" + key
	return engine.NetworkSpec{
		Name: name, Project: s.project, Key: key, ConfigHash: "nethash-" + key, Driver: "bridge",
		Labels: map[string]string{engine.LabelProject: s.project, engine.LabelNetwork: key},
	}
}

func (s *suite) volumeSpec(key string) engine.VolumeSpec {
	return engine.VolumeSpec{
		Name: s.project + "_" + key, Project: s.project, Key: key, ConfigHash: "volhash-" + key, Driver: "local",
		Labels: map[string]string{engine.LabelProject: s.project, engine.LabelVolume: key},
	}
}

// containerSpec is a container of service svc, replica n, on no network.
func (s *suite) containerSpec(svc string, n int) engine.ContainerSpec {
	name := fmt.Sprintf("%s-%s-%d", s.project, svc, n)
	return engine.ContainerSpec{
		Name: name, Project: s.project, Service: svc, Number: n, Image: s.opts.Image, ConfigHash: "hash-" + svc,
		Labels:  map[string]string{engine.LabelProject: s.project, engine.LabelService: svc},
		Process: engine.Process{Command: s.opts.Command, StopSignal: "SIGKILL"},
		Network: engine.NetworkConfig{Mode: "none"},
		Restart: engine.RestartPolicy{Name: "no"},
	}
}

func (s *suite) createNetwork(spec engine.NetworkSpec) {
	s.t.Helper()
	if err := s.d.CreateNetwork(s.ctx, spec); err != nil {
		s.t.Fatalf("CreateNetwork(%s): %v", spec.Name, err)
	}
	s.t.Cleanup(func() { _ = s.d.RemoveNetwork(context.Background(), spec.Name) })
}

func (s *suite) createVolume(spec engine.VolumeSpec) {
	s.t.Helper()
	if err := s.d.CreateVolume(s.ctx, spec); err != nil {
		s.t.Fatalf("CreateVolume(%s): %v", spec.Name, err)
	}
	s.t.Cleanup(func() { _ = s.d.RemoveVolume(context.Background(), spec.Name) })
}

// createContainer creates spec and registers its removal; cleanups run last
// registered first, so containers go before their networks and volumes.
func (s *suite) createContainer(spec engine.ContainerSpec) string {
	s.t.Helper()
	id, err := s.d.CreateContainer(s.ctx, spec)
	if err != nil {
		s.t.Fatalf("CreateContainer(%s): %v", spec.Name, err)
	}
	if id == "" {
		s.t.Fatalf("CreateContainer(%s) returned an empty ID", spec.Name)
	}
	s.removeLater(id)
	return id
}

// removeLater stops and removes container id when the test ends.
func (s *suite) removeLater(id string) {
	s.t.Cleanup(func() {
		ctx := context.Background()
		_ = s.d.StopContainer(ctx, id, s.opts.StopTimeout)
		_ = s.d.RemoveContainer(ctx, id)
	})
}

func (s *suite) observe() engine.State {
	s.t.Helper()
	st, err := s.d.Observe(s.ctx, s.project)
	if err != nil {
		s.t.Fatalf("Observe(%s): %v", s.project, err)
	}
	return st
}

// container finds id in a fresh observation; ok is false when it is gone.
func (s *suite) container(id string) (engine.Container, bool) {
	s.t.Helper()
	for _, c := range s.observe().Containers {
		if c.ID == id {
			return c, true
		}
	}
	return engine.Container{}, false
}

func (s *suite) mustContainer(id string) engine.Container {
	s.t.Helper()
	c, ok := s.container(id)
	if !ok {
		s.t.Fatalf("Observe does not list container %s", id)
	}
	return c
}

func hasNetwork(st engine.State, name string) (engine.Network, bool) {
	i := slices.IndexFunc(st.Networks, func(n engine.Network) bool { return n.Name == name })
	if i < 0 {
		return engine.Network{}, false
	}
	return st.Networks[i], true
}

func hasVolume(st engine.State, name string) (engine.Volume, bool) {
	i := slices.IndexFunc(st.Volumes, func(v engine.Volume) bool { return v.Name == name })
	if i < 0 {
		return engine.Volume{}, false
	}
	return st.Volumes[i], true
}

func (s *suite) wantErr(what string, err error, is func(error) bool, kind string) {
	s.t.Helper()
	if !is(err) {
		s.t.Errorf("%s: got error %v, want one wrapping errdefs.%s", what, err, kind)
	}
}

func (s *suite) wantNil(what string, err error) {
	s.t.Helper()
	if err != nil {
		s.t.Fatalf("%s: %v", what, err)
	}
}

var (
	isAlreadyExists = errdefs.IsAlreadyExists
	isNotFound      = errdefs.IsNotFound
)
