package enginetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/containerd/errdefs"

	"github.com/stackdev/stack/engine"
)

// Call is one recorded Driver call. Name is the resource's name; for the
// calls that take a container ID it is the container's name at call time.
type Call struct {
	Method string
	Name   string
	ID     string
}

func (c Call) String() string { return c.Method + " " + c.Name }

// Fake is an in-memory engine.Driver. It is safe for concurrent use, records
// every call, and is stricter than a real engine where that catches planner
// bugs: it refuses to create a container whose image, networks or volumes
// are missing, to remove a running container, and to remove a network or
// volume a container still uses.
type Fake struct {
	// Before, when set, runs before every call, outside the lock: return an
	// error to make the call fail, or block to hold it in flight.
	Before func(ctx context.Context, c Call) error
	// Now is the clock; time.Now when nil.
	Now func() time.Time

	mu         sync.Mutex
	calls      []Call
	containers map[string]*engine.Container // by ID
	networks   map[string]engine.Network
	volumes    map[string]engine.Volume
	images     map[string]string // present: ref → digest
	remote     map[string]string // pullable: ref → digest
	seq        int
	subnets    int
}

// NewFake returns an empty engine where every image can be pulled, with a
// digest derived from its reference unless SetRemote says otherwise.
func NewFake() *Fake {
	return &Fake{
		containers: map[string]*engine.Container{},
		networks:   map[string]engine.Network{},
		volumes:    map[string]engine.Volume{},
		images:     map[string]string{},
		remote:     map[string]string{},
	}
}

var _ engine.Driver = (*Fake)(nil)

// SetRemote makes the registry serve digest for ref: a later pull with the
// always policy changes the local image.
func (f *Fake) SetRemote(ref, digest string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.remote[ref] = digest
}

// AddImage makes ref present locally, as a load would.
func (f *Fake) AddImage(ref, digest string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.images[ref] = digest
}

// AddNetwork puts a network in place as another tool would (e.g. an
// external network).
func (f *Fake) AddNetwork(n engine.Network) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.networks[n.Name] = n
}

// AddVolume puts a volume in place as another tool would.
func (f *Fake) AddVolume(v engine.Volume) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.volumes[v.Name] = v
}

// Calls returns the calls made so far, in the order they took effect.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// ResetCalls forgets the recorded calls.
func (f *Fake) ResetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

// before runs the Before hook for a call.
func (f *Fake) before(ctx context.Context, method, name, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if f.Before == nil {
		return nil
	}
	return f.Before(ctx, Call{Method: method, Name: name, ID: id})
}

// record notes a call that took effect; the caller holds the lock.
func (f *Fake) record(method, name, id string) {
	f.calls = append(f.calls, Call{Method: method, Name: name, ID: id})
}

func (f *Fake) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// Observe returns the project's containers (all when project is ""), every
// network and volume (names are host-wide: external ones must be visible)
// and the present images.
func (f *Fake) Observe(ctx context.Context, project string) (engine.State, error) {
	if err := f.before(ctx, "Observe", project, ""); err != nil {
		return engine.State{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var st engine.State
	for _, c := range f.containers {
		if project == "" || c.Project == project {
			st.Containers = append(st.Containers, cloneContainer(*c))
		}
	}
	sort.Slice(st.Containers, func(i, j int) bool { return st.Containers[i].Name < st.Containers[j].Name })
	for _, name := range sortedKeys(f.networks) {
		n := f.networks[name]
		n.Labels = maps.Clone(n.Labels)
		st.Networks = append(st.Networks, n)
	}
	for _, name := range sortedKeys(f.volumes) {
		v := f.volumes[name]
		v.Labels = maps.Clone(v.Labels)
		st.Volumes = append(st.Volumes, v)
	}
	st.Images = maps.Clone(f.images)
	if st.Images == nil {
		st.Images = map[string]string{}
	}
	return st, nil
}

// PullImage follows the policy: never fails when the image is absent,
// missing keeps a present image, always fetches the registry's digest.
func (f *Fake) PullImage(ctx context.Context, ref string, opts engine.PullOptions) (string, error) {
	if err := f.before(ctx, "PullImage", ref, ""); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.record("PullImage", ref, "")
	local, present := f.images[ref]
	switch {
	case opts.Policy == engine.PullNever && !present:
		return "", fmt.Errorf("image %s: %w (pull policy never)", ref, errdefs.ErrNotFound)
	case opts.Policy == engine.PullNever, opts.Policy != engine.PullAlways && present:
		return local, nil
	}
	digest, ok := f.remote[ref]
	if !ok {
		sum := sha256.Sum256([]byte(ref))
		digest = "sha256:" + hex.EncodeToString(sum[:])
	}
	f.images[ref] = digest
	if opts.Progress != nil {
		opts.Progress(engine.PullProgress{Ref: ref, Digest: digest, Status: "done"})
	}
	return digest, nil
}

// RemoveImage removes a local image and returns the names removed; a
// missing one is ErrNotFound.
func (f *Fake) RemoveImage(ctx context.Context, ref string) ([]string, error) {
	if err := f.before(ctx, "RemoveImage", ref, ""); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.images[ref]; !ok {
		return nil, fmt.Errorf("image %s: %w", ref, errdefs.ErrNotFound)
	}
	f.record("RemoveImage", ref, "")
	delete(f.images, ref)
	return []string{ref}, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func cloneContainer(c engine.Container) engine.Container {
	c.Labels = maps.Clone(c.Labels)
	c.Networks = slices.Clone(c.Networks)
	c.Volumes = slices.Clone(c.Volumes)
	c.Ports = slices.Clone(c.Ports)
	return c
}

// containerLabels are the spec's labels plus the ones stack writes.
func containerLabels(spec engine.ContainerSpec) map[string]string {
	l := maps.Clone(spec.Labels)
	if l == nil {
		l = map[string]string{}
	}
	l[engine.LabelProject] = spec.Project
	l[engine.LabelService] = spec.Service
	l[engine.LabelNumber] = strconv.Itoa(spec.Number)
	l[engine.LabelOneOff] = "False"
	if spec.OneOff {
		l[engine.LabelOneOff] = "True"
	}
	l[engine.LabelConfigHash] = spec.ConfigHash
	l[engine.LabelName] = spec.Name
	return l
}

// FailOn makes every call of method on the resource named name fail with
// err ("" matches any name). It replaces Before.
func (f *Fake) FailOn(method, name string, err error) {
	f.Before = func(_ context.Context, c Call) error {
		if c.Method == method && (name == "" || c.Name == name) {
			return err
		}
		return nil
	}
}
