package enginetest

import (
	"slices"

	"github.com/stackdev/stack/engine"
)

// A pulled image is listed by Observe with the digest PullImage returned,
// and pulling it again with the missing policy keeps it.
func testPullImage(s *suite) {
	digest := s.pull()
	if got := s.observe().Images[s.opts.Image]; got != digest {
		s.t.Errorf("Observe().Images[%s] = %q, want the pulled digest %q", s.opts.Image, got, digest)
	}
	again, err := s.d.PullImage(s.ctx, s.opts.Image, engine.PullOptions{Policy: engine.PullMissing})
	s.wantNil("PullImage again", err)
	if again != digest {
		s.t.Errorf("PullImage again with policy missing = %q, want %q", again, digest)
	}
}

// A network is observed with its project and hash; creating it twice is
// AlreadyExists; removing it twice is nil.
func testNetworks(s *suite) {
	spec := s.networkSpec("default")
	s.createNetwork(spec)
	n, ok := hasNetwork(s.observe(), spec.Name)
	if !ok {
		s.t.Fatalf("Observe does not list network %s", spec.Name)
	}
	if n.Project != s.project || n.ConfigHash != spec.ConfigHash {
		s.t.Errorf("network observed with project %q hash %q, want %q %q", n.Project, n.ConfigHash, s.project, spec.ConfigHash)
	}
	if n.Subnet == "" {
		s.t.Errorf("network %s observed without a subnet; the driver must choose one", spec.Name)
	}
	s.wantErr("CreateNetwork twice", s.d.CreateNetwork(s.ctx, spec), isAlreadyExists, "ErrAlreadyExists")
	s.wantNil("RemoveNetwork", s.d.RemoveNetwork(s.ctx, spec.Name))
	if _, ok := hasNetwork(s.observe(), spec.Name); ok {
		s.t.Errorf("network %s still observed after RemoveNetwork", spec.Name)
	}
	s.wantNil("RemoveNetwork of a removed network", s.d.RemoveNetwork(s.ctx, spec.Name))
}

// Volumes behave like networks.
func testVolumes(s *suite) {
	spec := s.volumeSpec("data")
	s.createVolume(spec)
	v, ok := hasVolume(s.observe(), spec.Name)
	if !ok {
		s.t.Fatalf("Observe does not list volume %s", spec.Name)
	}
	if v.Project != s.project || v.ConfigHash != spec.ConfigHash {
		s.t.Errorf("volume observed with project %q hash %q, want %q %q", v.Project, v.ConfigHash, s.project, spec.ConfigHash)
	}
	s.wantErr("CreateVolume twice", s.d.CreateVolume(s.ctx, spec), isAlreadyExists, "ErrAlreadyExists")
	s.wantNil("RemoveVolume", s.d.RemoveVolume(s.ctx, spec.Name))
	if _, ok := hasVolume(s.observe(), spec.Name); ok {
		s.t.Errorf("volume %s still observed after RemoveVolume", spec.Name)
	}
	s.wantNil("RemoveVolume of a removed volume", s.d.RemoveVolume(s.ctx, spec.Name))
}

// created → running → exited → gone, with the labels the reconciler reads.
func testContainerLifecycle(s *suite) {
	digest := s.pull()
	spec := s.containerSpec("web", 1)
	id := s.createContainer(spec)
	c := s.mustContainer(id)
	if c.Name != spec.Name || c.Project != s.project || c.Service != "web" || c.Number != 1 || c.OneOff {
		s.t.Errorf("observed name %q project %q service %q number %d oneoff %v, want %q %q web 1 false",
			c.Name, c.Project, c.Service, c.Number, c.OneOff, spec.Name, s.project)
	}
	if c.ConfigHash != spec.ConfigHash || c.Image != s.opts.Image || c.ImageID != digest {
		s.t.Errorf("observed hash %q image %q digest %q, want %q %q %q", c.ConfigHash, c.Image, c.ImageID, spec.ConfigHash, s.opts.Image, digest)
	}
	if c.Status != engine.StatusCreated {
		s.t.Errorf("status after create = %q, want created", c.Status)
	}
	dup, err := s.d.CreateContainer(s.ctx, spec)
	if err == nil {
		s.removeLater(dup)
	}
	s.wantErr("CreateContainer with a taken name", err, isAlreadyExists, "ErrAlreadyExists")

	s.wantNil("StartContainer", s.d.StartContainer(s.ctx, id))
	if c := s.mustContainer(id); c.Status != engine.StatusRunning || c.StartedAt.IsZero() {
		s.t.Errorf("after start: status %q started %v, want running with a start time", c.Status, c.StartedAt)
	}
	s.wantNil("StopContainer", s.d.StopContainer(s.ctx, id, s.opts.StopTimeout))
	if c := s.mustContainer(id); c.Status != engine.StatusExited {
		s.t.Errorf("after stop: status %q, want exited", c.Status)
	}
	s.wantNil("StopContainer of a stopped container", s.d.StopContainer(s.ctx, id, s.opts.StopTimeout))
	s.wantNil("RemoveContainer", s.d.RemoveContainer(s.ctx, id))
	if _, ok := s.container(id); ok {
		s.t.Errorf("container %s still observed after RemoveContainer", id)
	}
	s.wantNil("RemoveContainer of a removed container", s.d.RemoveContainer(s.ctx, id))
}

// A running container is observed on the networks and with the volumes of
// its spec: the reconciler recreates containers missing one.
func testContainerAttachments(s *suite) {
	s.pull()
	net, vol := s.networkSpec("back"), s.volumeSpec("data")
	s.createNetwork(net)
	s.createVolume(vol)
	spec := s.containerSpec("db", 1)
	spec.Network = engine.NetworkConfig{Networks: []engine.NetworkAttachment{{Network: net.Name, Aliases: []string{"db"}}}}
	spec.Mounts = []engine.Mount{{Type: engine.MountVolume, Source: vol.Name, Target: "/data"}}
	id := s.createContainer(spec)
	s.wantNil("StartContainer", s.d.StartContainer(s.ctx, id))
	c := s.mustContainer(id)
	if !slices.Contains(c.Networks, net.Name) {
		s.t.Errorf("running container observed on networks %v, want %s among them", c.Networks, net.Name)
	}
	if !slices.Contains(c.Volumes, vol.Name) {
		s.t.Errorf("container observed with volumes %v, want %s among them", c.Volumes, vol.Name)
	}
}

// RenameContainer changes the observed name; a taken name is AlreadyExists.
func testRename(s *suite) {
	s.pull()
	final := s.containerSpec("web", 1)
	tmp := final
	tmp.Name = "0123456789ab_" + final.Name
	id := s.createContainer(tmp)
	s.wantNil("RenameContainer", s.d.RenameContainer(s.ctx, id, final.Name))
	if c := s.mustContainer(id); c.Name != final.Name {
		s.t.Errorf("observed name after rename %q, want %q", c.Name, final.Name)
	}
	other := s.createContainer(s.containerSpec("web", 2))
	err := s.d.RenameContainer(s.ctx, other, final.Name)
	s.wantErr("RenameContainer to a taken name", err, isAlreadyExists, "ErrAlreadyExists")
}

// Start and rename of a container that does not exist are NotFound; stop
// and remove of one succeed: it is already down.
func testMissingContainer(s *suite) {
	const id = "0000000000000000000000000000000000000000000000000000000000000000"
	s.wantErr("StartContainer of a missing container", s.d.StartContainer(s.ctx, id), isNotFound, "ErrNotFound")
	s.wantNil("StopContainer of a missing container", s.d.StopContainer(s.ctx, id, s.opts.StopTimeout))
	s.wantErr("RenameContainer of a missing container", s.d.RenameContainer(s.ctx, id, s.project+"-x-1"), isNotFound, "ErrNotFound")
	s.wantNil("RemoveContainer of a missing container", s.d.RemoveContainer(s.ctx, id))
}

// Observe(project) lists only the project's containers, but every network
// and volume: an external network belongs to no project and must be seen.
func testObserveScope(s *suite) {
	s.pull()
	mine := s.createContainer(s.containerSpec("web", 1))
	otherSpec := s.containerSpec("web", 1)
	otherSpec.Project = s.project + "x"
	otherSpec.Name = otherSpec.Project + "-web-1"
	otherSpec.Labels = map[string]string{engine.LabelProject: otherSpec.Project, engine.LabelService: "web"}
	other := s.createContainer(otherSpec)
	ext := engine.NetworkSpec{Name: s.project + "-external", Driver: "bridge", External: false}
	s.createNetwork(ext)

	st := s.observe()
	var ids []string
	for _, c := range st.Containers {
		ids = append(ids, c.ID)
	}
	if !slices.Contains(ids, mine) || slices.Contains(ids, other) {
		s.t.Errorf("Observe(%s) lists containers %v, want %s and not %s", s.project, ids, mine, other)
	}
	if _, ok := hasNetwork(st, ext.Name); !ok {
		s.t.Errorf("Observe(%s) does not list network %s of no project; external networks must be visible", s.project, ext.Name)
	}
}
