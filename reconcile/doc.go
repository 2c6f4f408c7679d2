// Package reconcile decides and acts. Compute and ComputeDown are pure: from
// a Desired state (compose) and an observed State (engine) they return a Plan,
// an ordered list of Steps, each one engine call, with the Steps it waits for
// and a Reason for humans. Apply executes a Plan against an engine.Driver with
// bounded parallelism; it is the only concurrent code of the package and it
// never looks at a Step's Reason.
//
// The decisions are compose's: a container is replaced when its config hash,
// its image digest, or a declared network or volume differs (create new, stop
// old, remove old, rename new, start new); scaling down removes diverged and
// highest-numbered replicas first; scaling up numbers from the highest + 1;
// depends_on orders creation and start (required: false only orders); a
// dependency recreated with restart: true restarts its dependents; orphans are
// warned about, or removed with RemoveOrphans.
//
// Containers created by a Plan carry LabelConcerns, a short hash per concern
// of their spec, so that the next Plan can say what changed.
//
// It may import compose and engine.
package reconcile
