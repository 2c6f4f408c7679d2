package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/stackdev/stack/compose"
	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
)

// Conditions a container is waited for.
const (
	condHealthy   = "service_healthy"
	condCompleted = compose.ConditionCompleted
	// condRunning is `up --wait`'s for a service without a healthcheck:
	// running (and healthy when it has one).
	condRunning = "running"
)

// waitPoll is how often waiting observes the containers.
const waitPoll = 250 * time.Millisecond

// errNotReady marks a container that may still become ready.
var errNotReady = errors.New("not ready")

// waitHook is reconcile's Wait hook for up: it returns once the containers
// ids meet condition, and fails at once when one never will.
func (a *app) waitHook(c *ctrd.Client, project string) func(ctx context.Context, condition string, ids []string) error {
	return func(ctx context.Context, condition string, ids []string) error {
		if condition == condHealthy {
			if err := a.healthDaemon(ctx); err != nil {
				return err
			}
		}
		want := map[string]string{}
		for _, id := range ids {
			want[id] = condition
		}
		return waitContainers(ctx, c, project, want, nil)
	}
}

// healthDaemon makes sure the daemon that runs healthchecks is there.
func (a *app) healthDaemon(ctx context.Context) error {
	if os.Getenv("STACK_DAEMON") == "off" {
		return errors.New("healthchecks are run by the stack daemon, and STACK_DAEMON=off: start `stack daemon` or unset STACK_DAEMON")
	}
	if err := a.ensureDaemon(ctx); err != nil {
		return fmt.Errorf("healthchecks need the stack daemon: %w", err)
	}
	return nil
}

// waitContainers observes the project until every container of want (ID or
// name → condition) meets its condition. It fails as soon as one cannot
// (exited, unhealthy, no healthcheck), and when ctx ends with what is not
// ready; timedOut, when set, words that error.
func waitContainers(ctx context.Context, c *ctrd.Client, project string, want map[string]string, timedOut func(notReady []string) error) error {
	for {
		st, err := c.Observe(ctx, project)
		if err != nil {
			if ctx.Err() != nil && timedOut != nil {
				return timedOut([]string{err.Error()})
			}
			return err
		}
		var notReady []string
		for key, cond := range want {
			ctr, ok := findContainer(st, key)
			if !ok {
				return fmt.Errorf("container %s is gone: run up again", key)
			}
			err := containerReady(ctr, cond, lastOutput(c, ctr))
			if errors.Is(err, errNotReady) {
				notReady = append(notReady, strings.TrimSuffix(err.Error(), ": "+errNotReady.Error()))
				continue
			}
			if err != nil {
				return err
			}
		}
		if len(notReady) == 0 {
			return nil
		}
		slices.Sort(notReady)
		t := time.NewTimer(waitPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			if timedOut != nil {
				return timedOut(notReady)
			}
			return fmt.Errorf("%s: %w", strings.Join(notReady, "; "), ctx.Err())
		case <-t.C:
		}
	}
}

func findContainer(st engine.State, key string) (engine.Container, bool) {
	for _, ctr := range st.Containers {
		if ctr.ID == key || ctr.Name == key {
			return ctr, true
		}
	}
	return engine.Container{}, false
}

// lastOutput is the output of the container's last health probe, for the
// message that says why it is unhealthy.
func lastOutput(c *ctrd.Client, ctr engine.Container) string {
	if ctr.Health != ctrd.HealthUnhealthy {
		return ""
	}
	hs, ok, err := c.LoadHealth(ctr.ID)
	if err != nil || !ok || len(hs.Log) == 0 {
		return ""
	}
	return strings.TrimSpace(hs.Log[len(hs.Log)-1].Output)
}

// containerReady is nil when ctr meets cond, an error wrapping errNotReady
// while it may still, and another error when it never will.
func containerReady(ctr engine.Container, cond, output string) error {
	name := ctr.Name
	if ctr.Status == engine.StatusExited {
		if cond == condCompleted && ctr.ExitCode == 0 {
			return nil
		}
		return fmt.Errorf("container %s exited (%d)", name, ctr.ExitCode)
	}
	if cond == condCompleted {
		return fmt.Errorf("container %s has not completed yet (%s): %w", name, ctr.Status, errNotReady)
	}
	if ctr.Status != engine.StatusRunning {
		return fmt.Errorf("container %s is %s: %w", name, ctr.Status, errNotReady)
	}
	switch ctr.Health {
	case ctrd.HealthHealthy:
		return nil
	case ctrd.HealthUnhealthy:
		if output != "" {
			return fmt.Errorf("container %s is unhealthy: %s", name, output)
		}
		return fmt.Errorf("container %s is unhealthy", name)
	case "":
		if cond == condHealthy {
			return fmt.Errorf("container %s has no healthcheck: add one to its service, or depend on it with condition service_started", name)
		}
		return nil
	}
	return fmt.Errorf("container %s is %s: %w", name, ctr.Health, errNotReady)
}

// upWaitTargets is what `up --wait` waits for: every container of the
// selected services running (healthy when it has a healthcheck), and
// completed successfully for the one-shot services others depend on with
// service_completed_successfully.
func upWaitTargets(desired compose.Desired) map[string]string {
	oneShot := desired.OneShots()
	want := map[string]string{}
	for _, spec := range desired.Containers {
		switch {
		case oneShot[spec.Service]:
			want[spec.Name] = condCompleted
		case ctrd.ActiveHealthcheck(spec.Health) != nil:
			want[spec.Name] = condHealthy
		default:
			want[spec.Name] = condRunning
		}
	}
	return want
}

// upWait is `up --wait`: it returns once the project is ready, or fails
// after timeout (0: none) naming what is not.
func (a *app) upWait(ctx context.Context, c *ctrd.Client, desired compose.Desired, timeout time.Duration) error {
	want := upWaitTargets(desired)
	for _, cond := range want {
		if cond == condHealthy {
			if err := a.healthDaemon(ctx); err != nil {
				return err
			}
			break
		}
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	return waitContainers(ctx, c, desired.Project, want, func(notReady []string) error {
		return fmt.Errorf("application not healthy after %s: %s", timeout, strings.Join(notReady, "; "))
	})
}
