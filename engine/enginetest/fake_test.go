package enginetest_test

import (
	"testing"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/enginetest"
)

func TestFakeConformance(t *testing.T) {
	enginetest.RunDriverSuite(t, func(t *testing.T) engine.Driver { return enginetest.NewFake() },
		enginetest.SuiteOptions{Image: "docker.io/library/busybox:latest", Command: []string{"sleep", "3600"}})
}
