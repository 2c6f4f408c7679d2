package daemon

import (
	"fmt"
	"time"

	"github.com/stackdev/stack/engine"
)

// Docker's restart backoff: the first restart waits 100 ms, each next one
// twice as long, at most a minute; a run that lasted 10 s starts the
// doubling over.
const (
	BackoffFirst = 100 * time.Millisecond
	BackoffMax   = time.Minute
	BackoffReset = 10 * time.Second
)

// Exit is how one run of a container ended, as the daemon observed it.
type Exit struct {
	Code int
	// Ran is how long the run lasted.
	Ran time.Duration
	// UserStopped: the user stopped or killed it (stop, kill, down,
	// Ctrl-C); no policy restarts it.
	UserStopped bool
	// TaskGone: the task vanished without an exit the daemon saw
	// (containerd or the host restarted), so the exit code is unknown.
	TaskGone bool
}

// History is what the daemon remembers of a container's restarts.
type History struct {
	// Count is how many restarts were made since the user last started
	// the container (kept by the engine, so it survives the daemon).
	Count int
	// Delay is the last backoff waited, 0 before the first restart.
	Delay time.Duration
	// Recent are the times of the restarts within the policy's window.
	Recent []time.Time
}

// Decision is what to do about one exit: restart after Delay or not, why,
// and the history to keep once the restart is made.
type Decision struct {
	Restart bool
	Delay   time.Duration
	Reason  string
	Next    History
}

// Decide applies policy p to exit e of a container with history h, at now.
// It is pure: the daemon schedules what it returns.
//
//   - no: never restarts.
//   - always, unless-stopped: restart after any exit, also when the task is
//     gone (the reboot case), but never one the user stopped (stack does not
//     bring a stopped always container back on reboot, unlike Docker).
//   - on-failure[:N]: restart after a non-zero exit, at most N times
//     (deploy.restart_policy max_attempts applies to any condition); with a
//     lost exit code (task gone) it does not restart.
//   - a window (deploy.restart_policy) counts only the restarts within it.
//   - a delay (deploy.restart_policy) is waited instead of the backoff.
func Decide(p engine.RestartPolicy, e Exit, h History, now time.Time) Decision {
	if reason, ok := refuse(p, e); !ok {
		return Decision{Reason: reason, Next: h}
	}
	if p.MaxAttempts > 0 {
		if n := attempts(p, h, now); n >= p.MaxAttempts {
			return Decision{Reason: fmt.Sprintf("gave up after %d restarts", n), Next: h}
		}
	}
	delay := backoff(h.Delay, e.Ran)
	next := History{Count: h.Count + 1, Delay: delay, Recent: recent(p, h.Recent, now)}
	switch {
	case e.TaskGone:
		delay = 0
	case p.Delay > 0:
		delay = p.Delay
	}
	next.Recent = append(next.Recent, now.Add(delay))
	return Decision{Restart: true, Delay: delay, Reason: why(p, e), Next: next}
}

// refuse says why policy p does not restart after e, if it does not.
func refuse(p engine.RestartPolicy, e Exit) (string, bool) {
	if e.UserStopped {
		return "stopped by the user", false
	}
	switch p.Name {
	case "always", "unless-stopped":
		return "", true
	case "on-failure":
		if e.TaskGone {
			return "on-failure: the task is gone, its exit code unknown", false
		}
		if e.Code == 0 {
			return "on-failure: exited 0", false
		}
		return "", true
	case "", "no":
		return "restart: no", false
	}
	return fmt.Sprintf("unknown restart policy %q", p.Name), false
}

func why(p engine.RestartPolicy, e Exit) string {
	if e.TaskGone {
		return p.Name + ": the task is gone"
	}
	return fmt.Sprintf("%s: exited %d", p.Name, e.Code)
}

// attempts counts the restarts that count against max_attempts: those
// within the window when there is one, else all since the user's start.
func attempts(p engine.RestartPolicy, h History, now time.Time) int {
	if p.Window <= 0 {
		return h.Count
	}
	return len(recent(p, h.Recent, now))
}

// recent keeps the restart times within the window before now (none
// without a window: the count is enough).
func recent(p engine.RestartPolicy, times []time.Time, now time.Time) []time.Time {
	if p.Window <= 0 {
		return nil
	}
	var out []time.Time
	for _, t := range times {
		if now.Sub(t) < p.Window {
			out = append(out, t)
		}
	}
	return out
}

// backoff is the next delay after last, given how long the run lasted.
func backoff(last, ran time.Duration) time.Duration {
	if ran >= BackoffReset || last <= 0 {
		return BackoffFirst
	}
	return min(2*last, BackoffMax)
}
