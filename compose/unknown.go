package compose

import (
	"errors"
	"strings"
	"sync"

	"github.com/compose-spec/compose-go/v2/tree"
)

// specKeys matches every key the compose specification defines.
var specKeys = sync.OnceValue(func() *tree.Matcher {
	paths := make([]tree.Path, len(specPaths))
	for i, p := range specPaths {
		paths[i] = tree.Path(p)
	}
	return tree.NewMatcher(paths...)
})

// unknownKeys reports every key of every compose file that the
// specification does not define (typos such as "imagee"), all at once and
// before compose-go, whose schema check stops at the first one.
func unknownKeys(loc *locator) []error {
	var errs []error
	for i, raw := range loc.raw {
		for _, path := range walkUnknown(raw, tree.NewPath()) {
			errs = append(errs, unknownKeyError(loc.display(loc.files[i]), path))
		}
	}
	return errs
}

// fileErrors reports every unknown key, every value of the wrong type and
// every missing required variable in the compose files, together.
func fileErrors(loc *locator, env map[string]string) error {
	errs := append(unknownKeys(loc), schemaErrors(loc)...)
	p := problems{errs: append(errs, interpolationErrors(loc, env)...)}
	return p.err()
}

func walkUnknown(value any, p tree.Path) []tree.Path {
	var found []tree.Path
	switch v := value.(type) {
	case map[string]any:
		for k, e := range v {
			if strings.HasPrefix(k, "x-") {
				continue
			}
			next := p.Next(k)
			if !specKeys().Matches(next) && !specKeys().MayContain(next) {
				found = append(found, next)
				continue
			}
			found = append(found, walkUnknown(e, next)...)
		}
	case []any:
		for _, e := range v {
			found = append(found, walkUnknown(e, p.Next(tree.PathMatchList))...)
		}
	}
	return found
}

func unknownKeyError(file string, p tree.Path) error {
	return pathError(file, p, errUnknownKey)
}

var errUnknownKey = errors.New("unknown key (check its spelling and indentation)")
