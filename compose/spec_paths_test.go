package compose

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/schema"
)

// specPaths is generated so that no stack command pays for reading the
// JSON schema; this test keeps it equal to the schema of the compose-go
// version in go.mod (run with -update after upgrading compose-go).
func TestSpecKeysMatchSchema(t *testing.T) {
	var want []string
	for _, p := range schema.AttributePaths() {
		want = append(want, string(p))
	}
	if *update {
		writeSpecPaths(t, want)
		return
	}
	if !slices.Equal(specPaths, want) {
		t.Error("spec_paths.go is out of date with compose-go's schema: run go test ./compose -run TestSpecKeysMatchSchema -update")
	}
}

func writeSpecPaths(t *testing.T, paths []string) {
	var b strings.Builder
	b.WriteString("// Code generated from compose-go's schema.AttributePaths; DO NOT EDIT.\n")
	b.WriteString("// Refresh with: go test ./compose -run TestSpecKeysMatchSchema -update\n\n")
	b.WriteString("package compose\n\n// specPaths is every attribute path of the compose specification.\nvar specPaths = []string{\n")
	for _, p := range paths {
		fmt.Fprintf(&b, "\t%q,\n", p)
	}
	b.WriteString("}\n")
	if err := os.WriteFile("spec_paths.go", []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}
