package compose

import "testing"

func TestCPUsAreExact(t *testing.T) {
	for _, tc := range []struct {
		cpus float32
		want int64
	}{{0.1, 100_000_000}, {1.5, 1_500_000_000}, {0.33, 330_000_000}, {2, 2_000_000_000}} {
		if got := scaled(tc.cpus, 1e9); got != tc.want {
			t.Errorf("cpus %v = %d nano CPUs, want %d", tc.cpus, got, tc.want)
		}
	}
}
