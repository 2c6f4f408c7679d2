// Package engine holds the value types that describe containers, networks and
// volumes — both as desired (specs) and as observed (State) — and the small
// Driver interface through which the reconciler changes the host.
//
// It may import only the standard library and github.com/containerd/errdefs.
// No containerd client type, channel or cio value appears in its API, so the
// reconciler can be tested against the in-memory fake in engine/enginetest.
package engine
