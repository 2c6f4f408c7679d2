package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stackdev/stack/engine/ctrd"
)

// A command that changes a project waits, saying so, while another holds the
// project's lock; commands that only read never wait.
func TestChangingCommandsWaitForEachOtherReadersDoNot(t *testing.T) {
	p := newProjectEnv(t, twoServices)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := ctrd.New(ctx, ctrd.Options{Address: env.socket, Namespace: p.namespace, StateDir: p.stateDir})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	unlock, err := c.LockProject(ctx, p.project, nil)
	if err != nil {
		t.Fatal(err)
	}

	up := exec.CommandContext(ctx, env.stackBin, "up", "-d")
	up.Dir = p.dir
	up.Env = append(os.Environ(), "STACK_CONTAINERD_ADDRESS="+env.socket, "STACK_NAMESPACE="+p.namespace, "STACK_STATE_DIR="+p.stateDir)
	var stderr lockedBuffer
	up.Stderr = &stderr
	if err := up.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- up.Wait() }()

	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(stderr.String(), "waiting for another stack command") {
		if time.Now().After(deadline) {
			t.Fatalf("up never said it waits; stderr: %s", stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if out := p.mustRun("ps", "-a"); !strings.Contains(out, "NAME") {
		t.Errorf("ps while the lock is held: %q", out)
	}
	if out := p.mustRun("plan"); !strings.Contains(out, "to add") {
		t.Errorf("plan while the lock is held: %q", out)
	}
	select {
	case err := <-done:
		t.Fatalf("up finished while the lock was held: %v", err)
	default:
	}
	if st := p.observe(); len(st.Containers) != 0 {
		t.Fatalf("up changed the project while waiting: %d containers", len(st.Containers))
	}
	unlock()
	if err := <-done; err != nil {
		t.Fatalf("up after the lock was released: %v\n%s", err, stderr.String())
	}
	if st := p.observe(); len(st.Containers) != 2 {
		t.Errorf("up after waiting: %d containers, want 2", len(st.Containers))
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
