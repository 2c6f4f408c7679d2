// Package integration runs the built stack binary against a real containerd,
// real runc, CNI plugins and registry. Tests are compiled always; TestMain
// skips them unless STACK_TEST_CONTAINERD names a containerd socket, and fails
// when it is set but unusable (or when CI=true and it is not set).
// Benchmarks live in integration/bench. It may import every package.
package integration
