package integration

import (
	"context"
	"errors"
	"testing"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/images"
	"github.com/containerd/containerd/v2/core/leases"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/errdefs"
)

// cleanupNamespace registers a t.Cleanup that removes what a test left in
// namespace: tasks (killed), containers with their snapshots, images
// (waiting for garbage collection), leases, and then the namespace itself.
// Whatever cannot be removed is logged, not failed: the test's own
// assertions have already run.
func cleanupNamespace(t *testing.T, namespace string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := purgeNamespace(ctx, namespace); err != nil {
			t.Logf("cleanup of namespace %s: %v", namespace, err)
		}
	})
}

// purgeNamespace removes everything in namespace, then the namespace.
func purgeNamespace(ctx context.Context, namespace string) error {
	client, err := containerd.New(env.socket, containerd.WithDefaultNamespace(namespace))
	if err != nil {
		return err
	}
	defer client.Close()
	ctx = namespaces.WithNamespace(ctx, namespace)
	errs := []error{removeContainers(ctx, client), removeImages(ctx, client), removeLeases(ctx, client)}
	return errors.Join(append(errs, deleteNamespace(ctx, client, namespace))...)
}

// deleteNamespace deletes the namespace once the garbage collector has
// removed unreferenced blobs and snapshots: it triggers a collection by
// synchronously deleting a fresh lease, then retries a few times.
func deleteNamespace(ctx context.Context, client *containerd.Client, namespace string) error {
	var err error
	for range 5 {
		err = client.NamespaceService().Delete(ctx, namespace)
		if err == nil || errdefs.IsNotFound(err) {
			return nil
		}
		if !errdefs.IsFailedPrecondition(err) {
			return err
		}
		if l, lerr := client.LeasesService().Create(ctx, leases.WithRandomID()); lerr == nil {
			_ = client.LeasesService().Delete(ctx, l, leases.SynchronousDelete)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

func removeContainers(ctx context.Context, client *containerd.Client) error {
	ctrs, err := client.Containers(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, c := range ctrs {
		if task, err := c.Task(ctx, nil); err == nil {
			_, _ = task.Delete(ctx, containerd.WithProcessKill)
		}
		if err := c.Delete(ctx, containerd.WithSnapshotCleanup); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func removeImages(ctx context.Context, client *containerd.Client) error {
	is := client.ImageService()
	imgs, err := is.List(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for i, img := range imgs {
		var opts []images.DeleteOpt
		if i == len(imgs)-1 {
			opts = append(opts, images.SynchronousDelete())
		}
		if err := is.Delete(ctx, img.Name, opts...); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func removeLeases(ctx context.Context, client *containerd.Client) error {
	ls := client.LeasesService()
	all, err := ls.List(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, l := range all {
		if err := ls.Delete(ctx, l, leases.SynchronousDelete); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
