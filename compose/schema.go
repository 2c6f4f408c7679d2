package compose

import (
	"strings"

	"github.com/compose-spec/compose-go/v2/schema"
	"github.com/compose-spec/compose-go/v2/tree"
)

// schemaErrors checks each key of each compose file against the
// specification on its own, so that every wrong type is reported at once;
// compose-go's check of the whole model stops at the first. Values that
// hold a variable are skipped: their type is known only after
// interpolation, which compose-go checks.
func schemaErrors(loc *locator) []error {
	var errs []error
	for i, raw := range loc.raw {
		file := loc.display(loc.files[i])
		for _, section := range []string{"services", "networks", "volumes", "secrets", "configs"} {
			entries, _ := raw[section].(map[string]any)
			for _, name := range sortedKeys(entries) {
				attrs, _ := entries[name].(map[string]any)
				for _, key := range sortedKeys(attrs) {
					if err := checkSchema(section, name, key, attrs[key]); err != nil {
						errs = append(errs, schemaError(file, section, name, key, err))
					}
				}
			}
		}
	}
	return errs
}

func checkSchema(section, name, key string, value any) error {
	path := tree.NewPath(section, name, key)
	known := specKeys().Matches(path) && len(walkUnknown(value, path)) == 0
	if !known || strings.HasPrefix(key, "x-") || holdsVariable(value) {
		return nil
	}
	return schema.Validate(map[string]any{section: map[string]any{name: map[string]any{key: value}}})
}

func schemaError(file, section, name, key string, err error) error {
	prefix := section + "." + name + "."
	msg := strings.TrimPrefix(err.Error(), prefix)
	path, rest, _ := strings.Cut(msg, " ")
	e := &Error{File: file, Key: path, Err: errorString(rest)}
	if section == "services" {
		e.Service = name
	} else {
		e.Key = section + "." + name + "." + path
	}
	return e
}

type errorString string

func (e errorString) Error() string { return string(e) }

func holdsVariable(v any) bool {
	switch v := v.(type) {
	case string:
		return strings.Contains(v, "$")
	case map[string]any:
		for k, e := range v {
			if strings.Contains(k, "$") || holdsVariable(e) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if holdsVariable(e) {
				return true
			}
		}
	}
	return false
}
