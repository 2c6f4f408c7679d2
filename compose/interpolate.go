package compose

import (
	"strings"

	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/tree"
)

// interpolationErrors substitutes every value of every compose file with
// compose-go's own template engine, to report each missing required
// variable and each bad template with its file, service and key (compose-go
// names only the path).
func interpolationErrors(loc *locator, env map[string]string) []error {
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var errs []error
	for i, raw := range loc.raw {
		file := loc.display(loc.files[i])
		walkStrings(raw, tree.NewPath(), func(p tree.Path, s string) {
			if _, err := template.Substitute(s, lookup); err != nil {
				errs = append(errs, pathError(file, p, err))
			}
		})
	}
	return errs
}

func walkStrings(v any, p tree.Path, fn func(tree.Path, string)) {
	switch v := v.(type) {
	case string:
		fn(p, v)
	case map[string]any:
		for k, e := range v {
			if !strings.HasPrefix(k, "x-") {
				walkStrings(e, p.Next(k), fn)
			}
		}
	case []any:
		for _, e := range v {
			walkStrings(e, p.Next(tree.PathMatchList), fn)
		}
	}
}

// pathError locates an error at a model path: services.<name>.<key...> or
// a top-level key.
func pathError(file string, p tree.Path, err error) error {
	parts := p.Parts()
	e := &Error{File: file, Key: keyOf(parts), Err: err}
	if len(parts) >= 3 && parts[0] == "services" {
		e.Service, e.Key = parts[1], keyOf(parts[2:])
	}
	return e
}
