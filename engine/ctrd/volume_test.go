package ctrd

import (
	"context"
	"testing"
)

func TestAnonymousVolumesBelongToTheContainersProject(t *testing.T) {
	c := &Client{opts: Options{StateDir: t.TempDir()}}
	anon, err := c.ensureVolume(context.Background(), "", "demo")
	if err != nil {
		t.Fatal(err)
	}
	if anon.Project != "demo" || len(anon.Name) != 64 {
		t.Errorf("anonymous volume record %+v: want a generated name owned by demo", anon)
	}
	named, err := c.ensureVolume(context.Background(), "shared", "demo")
	if err != nil {
		t.Fatal(err)
	}
	if named.Project != "" {
		t.Errorf("a named volume created on first use was given to project %q; only down -v of its own project may remove it", named.Project)
	}
	vols, err := c.listVolumes()
	if err != nil || len(vols) != 2 {
		t.Fatalf("listVolumes = %v, %v", vols, err)
	}
}
