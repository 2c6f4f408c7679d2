// Package enginetest holds Fake, an in-memory engine.Driver for the
// reconciler's tests, and RunDriverSuite, the conformance suite every Driver
// passes: the fake here, the containerd driver from integration/.
//
// It may import engine and github.com/containerd/errdefs (and testing).
package enginetest
