package integration

import (
	"testing"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/enginetest"
)

// The containerd driver passes the same conformance suite as the fake the
// planner's tests run against, so the two cannot drift apart.
func TestDriverConformance(t *testing.T) {
	enginetest.RunDriverSuite(t, func(t *testing.T) engine.Driver { return newDriverEnv(t).d },
		enginetest.SuiteOptions{Image: busybox, Command: []string{"sleep", "3600"}, Pull: engine.PullNever})
}
