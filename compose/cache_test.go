package compose

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestCacheReturnsWhatLoadReturns: for every golden case that loads, a
// cache miss and the hit after it both equal a plain Load, field for field
// (so nothing is lost in the entry's encoding).
func TestCacheReturnsWhatLoadReturns(t *testing.T) {
	dirs, err := filepath.Glob("testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		if strings.HasPrefix(filepath.Base(dir), "err-") {
			continue
		}
		t.Run(filepath.Base(dir), func(t *testing.T) {
			abs, err := filepath.Abs(dir)
			if err != nil {
				t.Fatal(err)
			}
			opts := readCaseOptions(t, abs).load(abs)
			want, err := Load(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			cache := Cache{Dir: t.TempDir(), Salt: "test"}
			for _, attempt := range []string{"miss", "hit"} {
				got, err := LoadCached(context.Background(), opts, cache)
				if err != nil {
					t.Fatalf("%s: %v", attempt, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("%s: LoadCached differs from Load:\n got %+v\nwant %+v", attempt, got, want)
				}
			}
		})
	}
}

// cacheProject is a project directory with one service reading an env file
// and a secret.
type cacheProject struct {
	dir   string
	cache Cache
	env   map[string]string
}

func newCacheProject(t *testing.T) *cacheProject {
	t.Helper()
	p := &cacheProject{dir: t.TempDir(), cache: Cache{Dir: t.TempDir(), Salt: "test"}, env: map[string]string{}}
	p.write(t, "compose.yaml", `name: cached
services:
  web:
    image: busybox
    command: ["sleep", "${NAP:-1}"]
    env_file: [web.env]
    secrets: [token]
secrets:
  token:
    file: token.txt
`)
	p.write(t, "web.env", "MODE=one\n")
	p.write(t, "token.txt", "s3cret")
	return p
}

func (p *cacheProject) write(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(p.dir, name), []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func (p *cacheProject) load(t *testing.T) Desired {
	t.Helper()
	d, err := LoadCached(context.Background(), LoadOptions{WorkingDir: p.dir, Environment: p.env}, p.cache)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func (p *cacheProject) entries(t *testing.T) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(p.cache.Dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// tamper rewrites the project name inside every cache entry: a load that
// then returns the tampered name was served from the cache.
func (p *cacheProject) tamper(t *testing.T) {
	t.Helper()
	for _, name := range p.entries(t) {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		var e cacheEntry
		if err := json.Unmarshal(b, &e); err != nil {
			t.Fatal(err)
		}
		e.Desired.Project = "from-cache"
		b, _ = json.Marshal(e)
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func TestCacheServesAnUnchangedProject(t *testing.T) {
	p := newCacheProject(t)
	p.load(t)
	p.tamper(t)
	if got := p.load(t).Project; got != "from-cache" {
		t.Fatalf("second load of an unchanged project came from compose-go (project %q), want a cache hit", got)
	}
	for _, name := range p.entries(t) {
		info, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Perm() != 0o600 {
			t.Errorf("entry %s has mode %v; it holds secrets, want 0600", name, info.Mode().Perm())
		}
	}
}

// up passes the (empty) map of its --scale flags where down passes none;
// the two must share one entry, or every down loads the project again.
func TestCacheServesDownWhatUpCached(t *testing.T) {
	p := newCacheProject(t)
	up := LoadOptions{WorkingDir: p.dir, Environment: p.env, Scale: map[string]int{}, Services: []string{}}
	if _, err := LoadCached(context.Background(), up, p.cache); err != nil {
		t.Fatal(err)
	}
	p.tamper(t)
	if got := p.load(t).Project; got != "from-cache" {
		t.Fatalf("a load without scale and services after one with empty ones came from compose-go (project %q), want a cache hit", got)
	}
	if n := len(p.entries(t)); n != 1 {
		t.Errorf("%d cache entries, want 1", n)
	}
}

func TestCacheMissesWhenAnInputChanges(t *testing.T) {
	changes := map[string]func(t *testing.T, p *cacheProject){
		"compose file": func(t *testing.T, p *cacheProject) {
			p.write(t, "compose.yaml", "name: cached\nservices:\n  web:\n    image: busybox\n")
		},
		"env_file content":     func(t *testing.T, p *cacheProject) { p.write(t, "web.env", "MODE=two\n") },
		"secret file content":  func(t *testing.T, p *cacheProject) { p.write(t, "token.txt", "rotated") },
		"environment variable": func(t *testing.T, p *cacheProject) { p.env["NAP"] = "5" },
		"new .env file":        func(t *testing.T, p *cacheProject) { p.write(t, ".env", "NAP=7\n") },
		"new override file": func(t *testing.T, p *cacheProject) {
			p.write(t, "compose.override.yaml", "services:\n  web:\n    environment: [EXTRA=1]\n")
		},
	}
	for name, change := range changes {
		t.Run(name, func(t *testing.T) {
			p := newCacheProject(t)
			before := p.load(t)
			p.tamper(t)
			change(t, p)
			after := p.load(t)
			if after.Project == "from-cache" {
				t.Fatalf("after changing the %s the load was served from the stale entry", name)
			}
			if reflect.DeepEqual(before.Containers, after.Containers) {
				t.Fatalf("after changing the %s the container spec is unchanged", name)
			}
		})
	}
}

func TestCacheIsNotUsedForIncludeOrExtends(t *testing.T) {
	for _, dir := range []string{"testdata/include", "testdata/extends"} {
		abs, err := filepath.Abs(dir)
		if err != nil {
			t.Fatal(err)
		}
		cache := Cache{Dir: t.TempDir(), Salt: "test"}
		if _, err := LoadCached(context.Background(), readCaseOptions(t, abs).load(abs), cache); err != nil {
			t.Fatal(err)
		}
		if names, _ := filepath.Glob(filepath.Join(cache.Dir, "*.json")); len(names) != 0 {
			t.Errorf("%s: wrote cache entries %v; files read through include/extends are not in the key", dir, names)
		}
	}
}

func TestCacheNeverStoresErrors(t *testing.T) {
	p := newCacheProject(t)
	p.write(t, "compose.yaml", "services:\n  web:\n    image: busybox\n    secrets: [missing]\n")
	for range 2 {
		if _, err := LoadCached(context.Background(), LoadOptions{WorkingDir: p.dir, Environment: p.env}, p.cache); err == nil {
			t.Fatal("a project with an undefined secret loaded")
		}
	}
	if names := p.entries(t); len(names) != 0 {
		t.Fatalf("a failed load wrote cache entries %v", names)
	}
}

func TestCacheKeepsABoundedNumberOfEntries(t *testing.T) {
	p := newCacheProject(t)
	for i := range cacheEntries + 5 {
		p.env["NAP"] = strings.Repeat("1", i+1)
		p.load(t)
	}
	if n := len(p.entries(t)); n != cacheEntries {
		t.Fatalf("%d entries after %d distinct loads, want at most %d", n, cacheEntries+5, cacheEntries)
	}
}
