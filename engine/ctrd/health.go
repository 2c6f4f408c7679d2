package ctrd

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/stackdev/stack/engine"
)

// Health statuses, as Docker names them.
const (
	HealthStarting  = "starting"
	HealthHealthy   = "healthy"
	HealthUnhealthy = "unhealthy"
)

// Healthcheck defaults, as Docker's.
const (
	DefaultHealthInterval      = 30 * time.Second
	DefaultHealthTimeout       = 30 * time.Second
	DefaultHealthStartInterval = 5 * time.Second
	DefaultHealthRetries       = 3
	// healthLogLen probes are kept, each output cut to healthOutputMax.
	healthLogLen    = 5
	healthOutputMax = 4096
)

// HealthProbe is one run of a container's healthcheck test.
type HealthProbe struct {
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	ExitCode int       `json:"exitCode"`
	Output   string    `json:"output"`
}

// HealthState is a container's health, kept in
// <state>/containers/<id>/health.json for the task started at StartedAt.
type HealthState struct {
	Status        string        `json:"status"`
	FailingStreak int           `json:"failingStreak"`
	Log           []HealthProbe `json:"log"`
	StartedAt     time.Time     `json:"startedAt"`
}

func (c *Client) healthPath(id string) string { return c.containerDir(id, "health.json") }

// LoadHealth reads the recorded health of container id; ok is false when
// nothing is recorded.
func (c *Client) LoadHealth(id string) (hs HealthState, ok bool, err error) {
	err = readJSON(c.healthPath(id), &hs)
	if isNotExist(err) {
		return hs, false, nil
	}
	return hs, err == nil, err
}

// SaveHealth records the health of container id.
func (c *Client) SaveHealth(id string, hs HealthState) error {
	if err := writeJSON(c.healthPath(id), hs); err != nil {
		return fmt.Errorf("container %s: write health: %w", id, err)
	}
	return nil
}

// ActiveHealthcheck is hc with Docker's defaults filled in, or nil when
// there is no check to run (none declared, test NONE, or an empty test).
func ActiveHealthcheck(hc *engine.Healthcheck) *engine.Healthcheck {
	if hc == nil || len(hc.Test) == 0 || strings.EqualFold(hc.Test[0], "NONE") {
		return nil
	}
	out := *hc
	if out.Interval <= 0 {
		out.Interval = DefaultHealthInterval
	}
	if out.Timeout <= 0 {
		out.Timeout = DefaultHealthTimeout
	}
	if out.StartInterval <= 0 {
		out.StartInterval = DefaultHealthStartInterval
	}
	if out.Retries <= 0 {
		out.Retries = DefaultHealthRetries
	}
	return &out
}

// Healthcheck returns container id's healthcheck with defaults filled in,
// nil when it has none.
func (c *Client) Healthcheck(ctx context.Context, id string) (*engine.Healthcheck, error) {
	spec, err := c.loadSpec(ctx, id)
	if err != nil {
		return nil, err
	}
	return ActiveHealthcheck(spec.Health), nil
}

// HealthArgv is the command a healthcheck test runs: CMD's arguments as
// they are, CMD-SHELL's through /bin/sh -c, a bare list as a shell command
// (as Docker does).
func HealthArgv(test []string) ([]string, error) {
	if len(test) == 0 {
		return nil, errors.New("healthcheck: empty test")
	}
	switch strings.ToUpper(test[0]) {
	case "CMD":
		if len(test) < 2 {
			return nil, errors.New("healthcheck: CMD without a command")
		}
		return test[1:], nil
	case "CMD-SHELL":
		return []string{"/bin/sh", "-c", strings.Join(test[1:], " ")}, nil
	case "NONE":
		return nil, errors.New("healthcheck: disabled (NONE)")
	}
	return []string{"/bin/sh", "-c", strings.Join(test, " ")}, nil
}

// ProbeHealth runs hc's test once in the running container id, within the
// timeout. A test that cannot run or times out is a failed probe (exit
// code -1 with the reason as its output), as Docker records it; err is
// returned only when ctx ended.
func (c *Client) ProbeHealth(ctx context.Context, id string, hc engine.Healthcheck) (HealthProbe, error) {
	return c.probeHealth(ctx, id, time.Time{}, hc)
}

// probeHealth is ProbeHealth of the task started at started (zero: load the
// task anew).
func (c *Client) probeHealth(ctx context.Context, id string, started time.Time, hc engine.Healthcheck) (HealthProbe, error) {
	p := HealthProbe{Start: time.Now()}
	argv, err := HealthArgv(hc.Test)
	if err != nil {
		p.End, p.ExitCode, p.Output = time.Now(), -1, err.Error()
		return p, nil
	}
	pctx, cancel := context.WithTimeout(ctx, hc.Timeout)
	defer cancel()
	code, out, err := c.probeExec(pctx, id, started, argv, healthOutputMax)
	p.End, p.ExitCode, p.Output = time.Now(), code, string(out)
	switch {
	case ctx.Err() != nil:
		return p, ctx.Err()
	case pctx.Err() != nil:
		p.ExitCode, p.Output = -1, fmt.Sprintf("Health check exceeded timeout (%s)", hc.Timeout)
	case err != nil:
		p.ExitCode, p.Output = -1, err.Error()
	}
	return p, nil
}

// Record folds probe p into hs as Docker does: success makes the container
// healthy; a failure counts toward Retries unless it happened in the start
// period (inStart), and Retries failures in a row make it unhealthy.
func (hs *HealthState) Record(p HealthProbe, retries int, inStart bool) {
	hs.Log = append(hs.Log, p)
	if len(hs.Log) > healthLogLen {
		hs.Log = hs.Log[len(hs.Log)-healthLogLen:]
	}
	if hs.Status == "" {
		hs.Status = HealthStarting
	}
	if p.ExitCode == 0 {
		hs.Status, hs.FailingStreak = HealthHealthy, 0
		return
	}
	if inStart && hs.Status == HealthStarting {
		return
	}
	hs.FailingStreak++
	if hs.FailingStreak >= retries {
		hs.Status = HealthUnhealthy
	}
}

// observedHealth is the health Observe shows for a running container with
// an active healthcheck: the recorded status for its current task, else
// starting (no probe has finished yet).
func (c *Client) observedHealth(id string, spec engine.ContainerSpec, started time.Time) string {
	if ActiveHealthcheck(spec.Health) == nil {
		return ""
	}
	hs, ok, err := c.LoadHealth(id)
	if err != nil || !ok || !hs.StartedAt.Equal(started) || hs.Status == "" {
		return HealthStarting
	}
	return hs.Status
}

// CheckHealth runs one probe of hc in container id, whose task started at
// started, folds it into the recorded health (a record of an earlier task
// starts over) and returns the new status.
func (c *Client) CheckHealth(ctx context.Context, id string, started time.Time, hc engine.Healthcheck, inStart bool) (string, error) {
	p, err := c.probeHealth(ctx, id, started, hc)
	if err != nil {
		return "", err
	}
	hs, saved, ok := c.probes.health(id, started)
	if !ok {
		hs, _, _ = c.LoadHealth(id)
	}
	if !hs.StartedAt.Equal(started) {
		hs = HealthState{StartedAt: started}
	}
	before := hs
	hs.Record(p, hc.Retries, inStart)
	if ok && hs.Status == before.Status && hs.FailingStreak == before.FailingStreak && time.Since(saved) < healthSaveEvery {
		c.probes.setHealth(id, started, hs, saved)
		return hs.Status, nil
	}
	if err := c.SaveHealth(id, hs); err != nil {
		return hs.Status, err
	}
	c.probes.setHealth(id, started, hs, time.Now())
	return hs.Status, nil
}

// healthSaveEvery bounds how stale health.json's probe log may be while
// the status stays the same: a change of status or failing streak is saved
// at once, but writing the file after every probe of every container (a new
// inode each time) was most of the daemon's healthcheck cost.
const healthSaveEvery = 5 * time.Second
