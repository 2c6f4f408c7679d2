// Package ctrd is the containerd implementation of engine.Driver and the only
// package that imports the containerd client and CNI: images (pull, push,
// load, import, save), containers and tasks, CNI bridge networks and IPAM
// (the bridge and host-local plugins' part of an attachment is done in
// process, as those plugins do it and on their files; portmap still runs as
// a plugin: cni_inprocess.go), named volumes and published ports, and container logs: the shim runs
// the stack binary as the logging binary (engine/jsonfile writes the
// files) and this package reads them behind `stack logs` (OpenLogs,
// MergeLogs); files copied in and out of
// containers with docker cp's rules, every path resolved inside the
// container's root (CopyToContainer, CopyFromContainer), and the figures
// behind `stack stats` (ContainerStats, ComputeStats).
//
// It may import engine, the containerd client and its sub-packages, and CNI.
package ctrd
