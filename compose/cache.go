package compose

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"

	"github.com/compose-spec/compose-go/v2/types"
)

// Cache lets LoadCached skip compose-go when nothing it would read has
// changed: loading 30 services costs tens of milliseconds, a cache hit about
// one. An entry is keyed by everything Load reads up front (the options, the
// environment, the compose and .env files' contents) and records the files
// found through the model (env_file, secret and config files) with a digest
// of their contents, checked on every hit.
type Cache struct {
	// Dir holds the entries; "" disables the cache. Entries contain secret
	// contents, so Dir is created 0700 and entries 0600.
	Dir string
	// Salt identifies the stack build, so that an upgrade never reuses an
	// entry written by another version of this code.
	Salt string
}

const (
	cacheFormat = "stack-load-cache/1"
	// cacheEntries bounds the directory: the oldest entries beyond it are
	// removed when a new one is written.
	cacheEntries = 32
)

// uncacheableKeys name compose features that make compose-go read files
// the cache key would not cover. A project that mentions one, anywhere,
// always loads through compose-go: a false positive costs speed, never
// correctness.
var uncacheableKeys = [][]byte{[]byte("include"), []byte("extends"), []byte("label_file")}

type cacheEntry struct {
	Format  string
	Deps    []cacheDep
	Desired Desired
}

// cacheDep is a file the model refers to; Sum is "" when it did not exist.
type cacheDep struct {
	Path string
	Sum  string
}

// LoadCached returns what Load returns, from the cache when the entry for
// these inputs is still current. Errors are never cached: bad input is
// reported by a full load every time.
func LoadCached(ctx context.Context, opts LoadOptions, cache Cache) (Desired, error) {
	if cache.Dir == "" {
		return Load(ctx, opts)
	}
	key, ok := cacheKey(opts, cache.Salt)
	if !ok {
		return Load(ctx, opts)
	}
	path := filepath.Join(cache.Dir, key+".json")
	if d, ok := readCacheEntry(path); ok {
		return d, nil
	}
	d, m, err := loadDesired(ctx, opts)
	if err != nil {
		return Desired{}, err
	}
	writeCacheEntry(cache.Dir, path, cacheEntry{Format: cacheFormat, Deps: m.cacheDeps(), Desired: d})
	return d, nil
}

// cacheKey digests the inputs Load reads before compose-go runs. ok is
// false when the project cannot be cached (or its inputs cannot be
// resolved: Load reports that).
func cacheKey(opts LoadOptions, salt string) (key string, ok bool) {
	in, err := resolveInputs(opts)
	if err != nil {
		return "", false
	}
	// Load treats an empty list or map as an absent one: key them alike, so
	// that `down` (no --scale flags at all) finds what `up` cached.
	if len(opts.Scale) == 0 {
		opts.Scale = nil
	}
	if len(opts.Services) == 0 {
		opts.Services = nil
	}
	if len(opts.Profiles) == 0 {
		opts.Profiles = nil
	}
	h := sha256.New()
	optsJSON, err := json.Marshal(opts) // map keys are sorted: stable
	if err != nil {
		return "", false
	}
	writeField(h, cacheFormat)
	writeField(h, salt)
	h.Write(optsJSON)
	for _, group := range [][]string{in.files, in.envFiles} {
		writeField(h, "group")
		for _, f := range group {
			content, err := os.ReadFile(f)
			if err != nil {
				return "", false
			}
			for _, k := range uncacheableKeys {
				if bytes.Contains(content, k) {
					return "", false
				}
			}
			writeField(h, f)
			writeField(h, string(content))
		}
	}
	return hex.EncodeToString(h.Sum(nil)), true
}

// writeField writes a length-prefixed field, so that no two different
// field lists digest alike.
func writeField(h interface{ Write([]byte) (int, error) }, s string) {
	var n [8]byte
	l := len(s)
	for i := range n {
		n[i] = byte(l >> (8 * i))
	}
	h.Write(n[:])
	h.Write([]byte(s))
}

// cacheDeps are the files the model refers to that the key does not cover.
func (m *Model) cacheDeps() []cacheDep {
	paths := map[string]bool{}
	for _, services := range []types.Services{m.project.Services, m.project.DisabledServices} {
		for _, s := range services {
			for _, ef := range s.EnvFiles {
				paths[ef.Path] = true
			}
		}
	}
	for _, s := range m.project.Secrets {
		if s.File != "" {
			paths[s.File] = true
		}
	}
	for _, c := range m.project.Configs {
		if c.File != "" {
			paths[c.File] = true
		}
	}
	deps := make([]cacheDep, 0, len(paths))
	for p := range paths {
		deps = append(deps, cacheDep{Path: p, Sum: fileSum(p)})
	}
	sort.Slice(deps, func(i, j int) bool { return deps[i].Path < deps[j].Path })
	return deps
}

// fileSum is the digest of a file's content; "" when it cannot be read (a
// missing optional env file), "dir" for a directory.
func fileSum(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, syscall.EISDIR) {
			return "dir"
		}
		return ""
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func readCacheEntry(path string) (Desired, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Desired{}, false
	}
	var e cacheEntry
	if json.Unmarshal(b, &e) != nil || e.Format != cacheFormat {
		return Desired{}, false
	}
	for _, d := range e.Deps {
		if fileSum(d.Path) != d.Sum {
			return Desired{}, false
		}
	}
	return e.Desired, true
}

// writeCacheEntry stores an entry atomically. Failing to cache is not an
// error: the next load is merely slower.
func writeCacheEntry(dir, path string, e cacheEntry) {
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	if os.MkdirAll(dir, 0o700) != nil {
		return
	}
	tmp, err := os.CreateTemp(dir, ".entry-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if werr != nil || cerr != nil || os.Rename(tmp.Name(), path) != nil {
		os.Remove(tmp.Name())
		return
	}
	pruneCache(dir, cacheEntries)
}

// pruneCache keeps the newest keep entries.
func pruneCache(dir string, keep int) {
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) <= keep {
		return
	}
	type aged struct {
		name string
		mod  int64
	}
	var all []aged
	for _, e := range entries {
		if info, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), ".json") {
			all = append(all, aged{e.Name(), info.ModTime().UnixNano()})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].mod > all[j].mod })
	for _, a := range all[min(keep, len(all)):] {
		os.Remove(filepath.Join(dir, a.name))
	}
}
