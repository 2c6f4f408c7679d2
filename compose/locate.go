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
	// files are absolute: the -f files in order, then the files they
	// include (searched last: an included service cannot be redefined).
	files []string
	main  int              // how many of files are -f files
	raw   []map[string]any // each file's top-level mapping, nil when unreadable
}

func newLocator(projectDir string, files []string) *locator {
	l := &locator{projectDir: projectDir, main: len(files)}
	for _, f := range files {
		l.addFile(f)
	}
	for i := 0; i < len(l.files); i++ {
		for _, inc := range includedFiles(l.files[i], l.raw[i]) {
			if !containsString(l.files, inc) {
				l.addFile(inc)
			}
		}
	}
	return l
}

func (l *locator) addFile(f string) {
	l.files = append(l.files, f)
	l.raw = append(l.raw, readRaw(f))
}

// includedFiles lists the local files a compose file includes, in the
// short (path) and long (path: or path: [...]) syntax.
func includedFiles(file string, raw map[string]any) []string {
	entries, _ := raw["include"].([]any)
	var out []string
	for _, e := range entries {
		switch v := e.(type) {
		case string:
			out = append(out, v)
		case map[string]any:
			switch p := v["path"].(type) {
			case string:
				out = append(out, p)
			case []any:
				for _, x := range p {
					if s, ok := x.(string); ok {
						out = append(out, s)
					}
				}
			}
		}
	}
	for i, p := range out {
		out[i] = absFrom(filepath.Dir(file), p)
	}
	return out
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
	for i := l.main - 1; i >= 0; i-- {
		if hasPath(l.raw[i], path) {
			return i
		}
	}
	for i := l.main; i < len(l.raw); i++ {
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
