package compose

import (
	"os"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// locator tells which compose file declares a service key, so errors found
// on the merged model can name the file to edit.
type locator struct {
	projectDir string
	files      []string         // absolute, in -f order
	raw        []map[string]any // each file's top-level mapping, nil when unreadable
}

func newLocator(projectDir string, files []string) *locator {
	l := &locator{projectDir: projectDir, files: files}
	for _, f := range files {
		l.raw = append(l.raw, readRaw(f))
	}
	return l
}

func readRaw(file string) map[string]any {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var m map[string]any
	if yaml.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

// fileOf returns the display name of the last file setting the key of the
// service (or the top-level key when service is empty), else the last file
// declaring the service, else the first file.
func (l *locator) fileOf(service, key string) string {
	if l == nil || len(l.files) == 0 {
		return ""
	}
	path := strings.Split(key, ".")
	if service != "" {
		path = append([]string{"services", service}, path...)
	}
	for depth := len(path); depth >= 1; depth-- {
		if i := l.lastDefining(path[:depth]); i >= 0 {
			return l.display(l.files[i])
		}
	}
	return l.display(l.files[0])
}

func (l *locator) lastDefining(path []string) int {
	for i := len(l.raw) - 1; i >= 0; i-- {
		if hasPath(l.raw[i], path) {
			return i
		}
	}
	return -1
}

func hasPath(m map[string]any, path []string) bool {
	var cur any = m
	for _, p := range path {
		mm, ok := cur.(map[string]any)
		if !ok {
			return false
		}
		if cur, ok = mm[p]; !ok {
			return false
		}
	}
	return true
}

// display shortens a file name to its path inside the project directory.
func (l *locator) display(file string) string {
	if rel, err := filepath.Rel(l.projectDir, file); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return file
}
