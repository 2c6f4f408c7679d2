package reconcile

import (
	"fmt"
	"testing"
)

// BenchmarkComputeNoOp30 is the planning part of a no-op `up -d` of 30
// services (the target for the whole command is 30 ms).
func BenchmarkComputeNoOp30(b *testing.B) {
	var defs []svcDef
	for i := range 30 {
		defs = append(defs, svcDef{name: fmt.Sprintf("s%02d", i), env: []string{"A=1"}, volumes: []string{"data"}})
	}
	d := demo(defs...)
	st := observed(d)
	for b.Loop() {
		p, err := Compute(d, st, Options{})
		if err != nil || !p.Empty() {
			b.Fatal(err, p)
		}
	}
}
