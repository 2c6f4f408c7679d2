// Package logdriver makes the stack binary containerd's logging binary
// (`stack __log-driver CONFIG`) before the rest of stack initialises.
//
// The shim starts the logging binary when it creates a task and waits for it
// before the container can start. The package initialisers of the whole
// stack binary (compose's JSON schema, containerd's and gRPC's registries)
// take about 15 ms of CPU and 3 MB of heap; the logging binary needs none of
// them. Go initialises a package as soon as its imports are, in import-path
// order, so this one, which imports only the standard library and
// engine/jsonfile, runs before those packages and never returns to them.
package logdriver

import (
	"fmt"
	"os"

	"github.com/stackdev/stack/engine/jsonfile"
)

func init() {
	if len(os.Args) < 2 || os.Args[1] != jsonfile.DriverCommand {
		return
	}
	if len(os.Args) != 3 {
		fmt.Fprintf(os.Stderr, "usage: %s %s CONFIG\n", os.Args[0], jsonfile.DriverCommand)
		os.Exit(2)
	}
	if err := jsonfile.RunDriver(os.Args[2]); err != nil {
		fmt.Fprintf(os.Stderr, "stack %s: %v\n", jsonfile.DriverCommand, err)
		os.Exit(1)
	}
	os.Exit(0)
}
