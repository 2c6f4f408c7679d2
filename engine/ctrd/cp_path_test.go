package ctrd

import (
	"errors"
	"testing"
)

// The decision table of docker cp, row by row.
func TestPlanCopyFollowsDockerCpRules(t *testing.T) {
	file := func(p string) cpEnd { return cpEnd{Path: p, Exists: true} }
	dir := func(p string) cpEnd { return cpEnd{Path: p, Exists: true, IsDir: true} }
	missing := func(p string) cpEnd { return cpEnd{Path: p} }
	for _, tc := range []struct {
		name     string
		src, dst cpEnd
		want     cpTarget
		wantErr  error
	}{
		{"file to missing path: saved under that name", file("/etc/hosts"), missing("/tmp/h"), cpTarget{"/tmp", "h"}, nil},
		{"file to missing dir/: the directory must exist", file("/etc/hosts"), missing("/tmp/new/"), cpTarget{}, ErrCopyDestDir},
		{"file to missing dir/.: the directory must exist", file("/etc/hosts"), missing("/tmp/new/."), cpTarget{}, ErrCopyDestDir},
		{"file over a file: overwritten", file("/etc/hosts"), file("/tmp/h"), cpTarget{"/tmp", "h"}, nil},
		{"file into a directory: own name", file("/etc/hosts"), dir("/tmp"), cpTarget{"/tmp", "hosts"}, nil},
		{"file into a directory/: own name", file("/etc/hosts"), dir("/tmp/"), cpTarget{"/tmp", "hosts"}, nil},
		{"dir to missing path: created with the content", dir("/var/www"), missing("/tmp/site"), cpTarget{"/tmp", "site"}, nil},
		{"dir/ to missing path", dir("/var/www/"), missing("/tmp/site/"), cpTarget{"/tmp", "site"}, nil},
		{"dir/. to missing path", dir("/var/www/."), missing("/tmp/site"), cpTarget{"/tmp", "site"}, nil},
		{"dir onto a file: error", dir("/var/www"), file("/tmp/f"), cpTarget{}, ErrCopyDirToFile},
		{"dir into a directory: nested under its name", dir("/var/www"), dir("/tmp"), cpTarget{"/tmp", "www"}, nil},
		{"dir/ into a directory: nested too", dir("/var/www/"), dir("/tmp"), cpTarget{"/tmp", "www"}, nil},
		{"dir/. into a directory: content merged", dir("/var/www/."), dir("/tmp"), cpTarget{"/tmp", "."}, nil},
		{"root into a directory: merged", dir("/"), dir("/tmp"), cpTarget{"/tmp", "."}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := planCopy(tc.src, tc.dst)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error = %v, want %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestSplitPathDirEntryKeepsTheCurrentDirMarker(t *testing.T) {
	for p, want := range map[string][2]string{
		"/a/b":   {"/a", "b"},
		"/a/b/":  {"/a", "b"},
		"/a/b/.": {"/a/b", "."},
		"a":      {".", "a"},
		"/":      {"/", "/"},
	} {
		if dir, base := splitPathDirEntry(p); dir != want[0] || base != want[1] {
			t.Errorf("splitPathDirEntry(%q) = %q, %q; want %q, %q", p, dir, base, want[0], want[1])
		}
	}
}

func TestFollowsLastOnlyWithDashLOrADirectoryPath(t *testing.T) {
	if followsLast("/link", false) {
		t.Error("/link without -L is copied as a link")
	}
	if !followsLast("/link", true) || !followsLast("/link/", false) || !followsLast("/link/.", false) {
		t.Error("-L, /link/ and /link/. follow the link")
	}
}
