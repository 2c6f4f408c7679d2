package ctrd

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

func TestLockFileWaitsForHolderAndSaysSo(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.lock")
	ctx := context.Background()
	unlock, err := lockFile(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitedCh := make(chan bool, 1)
	acquired := make(chan func(), 1)
	go func() {
		u, err := lockFile(ctx, path, func() { waitedCh <- true })
		if err != nil {
			t.Error(err)
			return
		}
		acquired <- u
	}()
	select {
	case <-waitedCh:
	case <-time.After(5 * time.Second):
		t.Fatal("second locker was never told it waits")
	}
	select {
	case <-acquired:
		t.Fatal("second locker got the lock while the first held it")
	case <-time.After(100 * time.Millisecond):
	}
	unlock()
	select {
	case u := <-acquired:
		u()
	case <-time.After(5 * time.Second):
		t.Fatal("second locker did not get the lock after release")
	}
}

func TestLockFileGivesUpWhenContextEnds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.lock")
	unlock, err := lockFile(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	if _, err := lockFile(ctx, path, nil); err == nil {
		t.Fatal("lock acquired while held")
	}
}
