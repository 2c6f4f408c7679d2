package ctrd

import (
	"context"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/remotes"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/stackdev/stack/engine"
)

// Progress statuses beyond those engine.PullProgress documents.
const (
	progressWaiting     = "waiting"
	progressDownloading = "downloading"
	progressUploading   = "uploading"
	progressDone        = "done"
	progressExists      = "exists"
)

const progressInterval = 100 * time.Millisecond

// progressProbe reads one layer's transfer state.
type progressProbe func(ctx context.Context, desc ocispec.Descriptor) engine.PullProgress

// progressTracker watches the layers a pull or push dispatches and reports
// each change of status or byte count, in the order layers were seen.
type progressTracker struct {
	ref    string
	report func(engine.PullProgress)
	probe  progressProbe

	mu    sync.Mutex
	descs []ocispec.Descriptor
	known map[string]bool // digest → already present when first seen
	last  map[string]engine.PullProgress
}

func newProgressTracker(ref string, report func(engine.PullProgress), probe progressProbe) *progressTracker {
	return &progressTracker{ref: ref, report: report, probe: probe, known: map[string]bool{}, last: map[string]engine.PullProgress{}}
}

// handler records layer descriptors as the image walk dispatches them.
func (t *progressTracker) handler(present func(context.Context, ocispec.Descriptor) bool) images.HandlerFunc {
	return func(ctx context.Context, desc ocispec.Descriptor) ([]ocispec.Descriptor, error) {
		if !images.IsLayerType(desc.MediaType) {
			return nil, nil
		}
		exists := present != nil && present(ctx, desc)
		t.mu.Lock()
		defer t.mu.Unlock()
		if _, ok := t.known[desc.Digest.String()]; !ok {
			t.known[desc.Digest.String()] = exists
			t.descs = append(t.descs, desc)
		}
		return nil, nil
	}
}

// run polls until ctx ends, then reports once more so the last state shows.
func (t *progressTracker) run(ctx context.Context) (stop func()) {
	if t.report == nil {
		return func() {}
	}
	pollCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(progressInterval)
		defer tick.Stop()
		for {
			select {
			case <-pollCtx.Done():
				return
			case <-tick.C:
				t.poll(ctx)
			}
		}
	}()
	return func() {
		cancel()
		<-done
		t.poll(context.WithoutCancel(ctx))
	}
}

func (t *progressTracker) poll(ctx context.Context) {
	t.mu.Lock()
	descs := append([]ocispec.Descriptor(nil), t.descs...)
	existed := make(map[string]bool, len(t.known))
	for k, v := range t.known {
		existed[k] = v
	}
	t.mu.Unlock()
	for _, d := range descs {
		p := t.probe(ctx, d)
		if existed[d.Digest.String()] && p.Status == progressDone {
			p.Status = progressExists
		}
		p.Ref, p.Digest = t.ref, d.Digest.String()
		if p.Total == 0 {
			p.Total = d.Size
		}
		key := d.Digest.String()
		if t.last[key] != p {
			t.last[key] = p
			t.report(p)
		}
	}
}

// pullProbe reads download progress from the content store's active
// ingestions, and completion from the blob being present.
func pullProbe(cs content.Store) progressProbe {
	return func(ctx context.Context, desc ocispec.Descriptor) engine.PullProgress {
		key := remotes.MakeRefKey(ctx, desc)
		if st, err := cs.Status(ctx, key); err == nil {
			return engine.PullProgress{Status: progressDownloading, Done: st.Offset, Total: st.Total}
		}
		if contentPresent(cs)(ctx, desc) {
			return engine.PullProgress{Status: progressDone, Done: desc.Size, Total: desc.Size}
		}
		return engine.PullProgress{Status: progressWaiting, Total: desc.Size}
	}
}

// pushProbe reads upload progress from the resolver's status tracker.
func pushProbe(tracker docker.StatusTracker) progressProbe {
	return func(ctx context.Context, desc ocispec.Descriptor) engine.PullProgress {
		st, err := tracker.GetStatus(remotes.MakeRefKey(ctx, desc))
		switch {
		case err != nil:
			return engine.PullProgress{Status: progressWaiting, Total: desc.Size}
		case st.Exists:
			return engine.PullProgress{Status: progressExists, Done: desc.Size, Total: desc.Size}
		case st.Committed || (st.Total > 0 && st.Offset >= st.Total):
			return engine.PullProgress{Status: progressDone, Done: desc.Size, Total: desc.Size}
		default:
			return engine.PullProgress{Status: progressUploading, Done: st.Offset, Total: st.Total}
		}
	}
}

func contentPresent(cs content.Store) func(context.Context, ocispec.Descriptor) bool {
	return func(ctx context.Context, desc ocispec.Descriptor) bool {
		_, err := cs.Info(ctx, desc.Digest)
		return err == nil
	}
}
