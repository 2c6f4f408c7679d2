// Package jsonfile is Docker's json-file log format as stack writes it: the
// logging binary containerd's shim runs for each task (RunDriver), the
// rotating writer behind it (Log), and the line encoding (AppendLine).
//
// It imports a few packages of the standard library only, on purpose: the logging binary is
// the whole stack executable, and the shim waits for it before it starts
// each container, so cmd/stack runs RunDriver from a package init that comes
// before the heavy packages' (see cmd/stack/logdriver).
package jsonfile
