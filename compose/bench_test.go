package compose

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkLoad30 loads a project of 30 services: the fixed cost of every
// stack command that reads the compose files (a no-op up -d has ~30 ms).
func BenchmarkLoad30(b *testing.B) {
	dir := b.TempDir()
	var src strings.Builder
	src.WriteString("name: bench\nservices:\n")
	for i := range 30 {
		fmt.Fprintf(&src, "  s%d:\n    image: busybox\n    command: [sleep, infinity]\n    environment: {N: \"%d\"}\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(src.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	opts := LoadOptions{WorkingDir: dir, Environment: map[string]string{}}
	for b.Loop() {
		if _, err := Load(context.Background(), opts); err != nil {
			b.Fatal(err)
		}
	}
}
