package compose

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/stackdev/stack/engine"
)

// restart is the restart policy, stored for the daemon to enforce.
// deploy.restart_policy wins over restart, as in docker compose.
func (b *serviceBuilder) restart() engine.RestartPolicy {
	if b.s.Deploy != nil && b.s.Deploy.RestartPolicy != nil {
		return b.deployRestart(b.s.Deploy.RestartPolicy)
	}
	name, arg, _ := strings.Cut(b.s.Restart, ":")
	switch name {
	case "", "no":
		return engine.RestartPolicy{Name: "no"}
	case "always", "unless-stopped":
		return engine.RestartPolicy{Name: name}
	case "on-failure":
		r := engine.RestartPolicy{Name: name}
		if arg != "" {
			n, err := strconv.Atoi(arg)
			if err != nil || n < 0 {
				b.problem("restart", "%q: the retry count must be a number (on-failure:3)", b.s.Restart)
			}
			r.MaxAttempts = n
		}
		return r
	}
	b.problem("restart", "%q is not a restart policy (use no, always, on-failure[:N] or unless-stopped)", b.s.Restart)
	return engine.RestartPolicy{Name: "no"}
}

// deployRestart maps deploy.restart_policy: condition any (the default),
// on-failure or none, with max_attempts, delay and window kept for the
// daemon.
func (b *serviceBuilder) deployRestart(p *types.RestartPolicy) engine.RestartPolicy {
	r := engine.RestartPolicy{Delay: duration(p.Delay), Window: duration(p.Window)}
	if p.MaxAttempts != nil {
		r.MaxAttempts = int(*p.MaxAttempts)
	}
	switch p.Condition {
	case "", "any", "always":
		r.Name = "always"
	case "on-failure":
		r.Name = "on-failure"
	case "none", "no":
		r.Name = "no"
	default:
		b.problem("deploy.restart_policy.condition", "%q is not a restart condition (use none, on-failure or any)", p.Condition)
		r.Name = "no"
	}
	return r
}

// health is the healthcheck, nil when the service declares none (the
// image's applies).
func (b *serviceBuilder) health() *engine.Healthcheck {
	h := b.s.HealthCheck
	if h == nil {
		return nil
	}
	if h.Disable {
		return &engine.Healthcheck{Test: []string{"NONE"}}
	}
	out := &engine.Healthcheck{
		Test:          append([]string{}, h.Test...),
		Interval:      duration(h.Interval),
		Timeout:       duration(h.Timeout),
		StartPeriod:   duration(h.StartPeriod),
		StartInterval: duration(h.StartInterval),
	}
	if h.Retries != nil {
		out.Retries = int(*h.Retries)
	}
	return out
}

func duration(d *types.Duration) time.Duration {
	if d == nil {
		return 0
	}
	return time.Duration(*d)
}

// logging selects the log driver: json-file (the default) or none.
func (b *serviceBuilder) logging() engine.Logging {
	l := engine.Logging{Driver: "json-file"}
	if b.s.Logging == nil {
		return l
	}
	if b.s.Logging.Driver != "" {
		l.Driver = b.s.Logging.Driver
	}
	switch l.Driver {
	case "json-file", "none":
	default:
		b.problem("logging.driver", "%q is not supported (use json-file or none)", l.Driver)
	}
	l.Options = copyMap(b.s.Logging.Options)
	var bad *engine.LogOptionError
	if _, err := l.Limits(); l.Driver == "json-file" && errors.As(err, &bad) {
		b.problem("logging.options."+bad.Key, "%q: %v", bad.Value, bad.Err)
	}
	return l
}

// pullPolicy maps pull_policy to when the image is pulled.
func (b *serviceBuilder) pullPolicy() engine.PullPolicy {
	switch b.s.PullPolicy {
	case "", types.PullPolicyMissing, types.PullPolicyIfNotPresent:
		return engine.PullMissing
	case types.PullPolicyAlways:
		return engine.PullAlways
	case types.PullPolicyNever:
		return engine.PullNever
	}
	b.problem("pull_policy", "%q is not supported yet (use always, missing or never)", b.s.PullPolicy)
	return engine.PullMissing
}
