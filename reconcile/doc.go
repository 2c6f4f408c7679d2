// Package reconcile decides and acts. Compute and ComputeDown are pure: from
// a Desired state (compose) and an observed State (engine) they return a Plan,
// an ordered list of Steps, each one engine call, with the Steps it waits for
// and a Reason for humans. Apply executes a Plan against an engine.Driver with
// bounded parallelism; it is the only concurrent code of the package and it
// never looks at a Step's Reason.
//
// It may import compose and engine.
package reconcile
