package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const orderKeys = `
services:
  first:
    image: busybox
    command: ` + loop + `
  second:
    image: busybox
    command: ` + loop + `
    environment:
      GENERATION: "1"
    depends_on: [first]
  third:
    image: busybox
    command: ` + loop + `
    depends_on:
      second:
        condition: service_started
        restart: true
  scaled:
    image: busybox
    command: ` + loop + `
    scale: 3
  replicated:
    image: busybox
    command: ` + loop + `
    deploy:
      replicas: 2
`

// TestKeyDependsOnAndScale checks depends_on (short and long syntax) by the
// start times of the containers, and scale and deploy.replicas by the
// containers and their names.
func TestKeyDependsOnAndScale(t *testing.T) {
	p := newProjectEnv(t, orderKeys)
	p.up()
	st := p.observe()
	byName := map[string]time.Time{}
	for _, c := range st.Containers {
		if c.Status != "running" {
			t.Errorf("%s is %s", c.Name, c.Status)
		}
		byName[c.Name] = c.StartedAt
	}
	t.Run("depends_on order", func(t *testing.T) {
		first, second, third := byName[p.name("first", 1)], byName[p.name("second", 1)], byName[p.name("third", 1)]
		if first.IsZero() || !first.Before(second) || !second.Before(third) {
			t.Errorf("start times first %v, second %v, third %v: want each dependency started first", first, second, third)
		}
		labels := psLabels(t, p, "third")
		if dep := labels["com.docker.compose.depends_on"]; dep != "second:service_started:true" {
			t.Errorf("third's depends_on label = %q", dep)
		}
	})
	t.Run("depends_on restart", func(t *testing.T) {
		before := fingerprint(p.observe())
		p.writeCompose(strings.Replace(orderKeys, `GENERATION: "1"`, `GENERATION: "2"`, 1))
		p.up()
		after := p.observe()
		first, second, third := p.name("first", 1), p.name("second", 1), p.name("third", 1)
		now := fingerprint(after)
		if now[first] != before[first] {
			t.Errorf("first was touched: %s -> %s", before[first], now[first])
		}
		if p.containerNamed(second).ID == strings.Fields(before[second])[0] {
			t.Errorf("second was not recreated")
		}
		// third depends on second with restart: true: same container, new start.
		c := p.containerNamed(third)
		if c.ID != strings.Fields(before[third])[0] || now[third] == before[third] || c.Status != "running" {
			t.Errorf("third: before %s, after %s; want the same container restarted", before[third], now[third])
		}
	})
	t.Run("scale and deploy.replicas", func(t *testing.T) {
		for svc, n := range map[string]int{"scaled": 3, "replicated": 2} {
			got := 0
			for _, c := range st.Containers {
				if c.Service == svc {
					got++
				}
			}
			if got != n {
				t.Errorf("%s has %d containers, want %d", svc, got, n)
			}
			for i := 1; i <= n; i++ {
				if _, ok := byName[p.name(svc, i)]; !ok {
					t.Errorf("no container %s", p.name(svc, i))
				}
			}
		}
	})
}

const stopKeys = `
services:
  signalled:
    image: busybox
    command: ["sh", "-c", "trap 'echo TERM > /out/signal; exit 0' TERM; trap 'echo USR1 > /out/signal; exit 0' USR1; while true; do sleep 1; done"]
    stop_signal: SIGUSR1
    volumes: ["./out:/out"]
  stubborn:
    image: busybox
    command: ["sleep", "3600"]
    stop_grace_period: 4s
`

// TestKeyStopSignalAndGracePeriod stops the project and looks at what the
// containers received and how long stopping took: the stop_signal reaches
// the process, and a process that ignores SIGTERM is killed after its
// stop_grace_period, not Docker's default 10s, and at once with -t 0.
func TestKeyStopSignalAndGracePeriod(t *testing.T) {
	p := newProjectEnv(t, stopKeys)
	p.up()
	// Wait until sh catches SIGUSR1 (signal 10, bit 9 of SigCgt).
	signalled := p.name("signalled", 1)
	err := eventually(5*time.Second, func() error {
		if capSet(t, p.statusField(signalled, "SigCgt"))&(1<<9) == 0 {
			return fmt.Errorf("%s does not catch SIGUSR1 yet", signalled)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p.mustRun("down")
	took := time.Since(start)
	t.Run("stop_signal", func(t *testing.T) {
		got, err := os.ReadFile(filepath.Join(p.dir, "out", "signal"))
		if err != nil || strings.TrimSpace(string(got)) != "USR1" {
			t.Errorf("signal received: %q %v, want USR1", got, err)
		}
	})
	t.Run("stop_grace_period", func(t *testing.T) {
		if took < 4*time.Second || took > 9*time.Second {
			t.Errorf("down took %v; want about the 4s stop_grace_period of the SIGTERM-ignoring sleep, not the default 10s", took)
		}
	})
	t.Run("-t 0 stops at once", func(t *testing.T) {
		p.up()
		start := time.Now()
		p.mustRun("down", "-t", "0")
		if took0 := time.Since(start); took0 > took-2*time.Second {
			t.Errorf("down -t 0 took %v, down with a 4s grace period %v: want no grace period", took0, took)
		}
	})
}
