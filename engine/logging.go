package engine

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Docker's json-file defaults would grow without bound; these never fill a
// disk: three files of 10 MiB.
const (
	DefaultLogMaxSize  = 10 << 20
	DefaultLogMaxFiles = 3
)

// LogLimits are the json-file driver's rotation settings.
type LogLimits struct {
	MaxSize  int64 // bytes per file; 0 means never rotate
	MaxFiles int   // files kept, the current one included
}

// Limits reads the json-file options max-size and max-file as Docker does
// (sizes like 500k, 10m, 1g; max-size -1 means unlimited). Any other
// option is an error naming it.
func (l Logging) Limits() (LogLimits, error) {
	lim := LogLimits{MaxSize: DefaultLogMaxSize, MaxFiles: DefaultLogMaxFiles}
	keys := make([]string, 0, len(l.Options))
	for k := range l.Options {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := lim.set(k, l.Options[k]); err != nil {
			return LogLimits{}, &LogOptionError{Key: k, Value: l.Options[k], Err: err}
		}
	}
	return lim, nil
}

// LogOptionError names the logging option that is wrong and why.
type LogOptionError struct {
	Key, Value string
	Err        error
}

func (e *LogOptionError) Error() string {
	return fmt.Sprintf("logging.options.%s %q: %v", e.Key, e.Value, e.Err)
}

func (e *LogOptionError) Unwrap() error { return e.Err }

func (lim *LogLimits) set(key, value string) error {
	switch key {
	case "max-size":
		if strings.TrimSpace(value) == "-1" {
			lim.MaxSize = 0
			return nil
		}
		n, err := parseSize(value)
		if err != nil {
			return err
		}
		if n <= 0 {
			return fmt.Errorf("must be positive (or -1 for unlimited)")
		}
		lim.MaxSize = n
	case "max-file":
		n, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil || n < 1 {
			return fmt.Errorf("must be a whole number of files, at least 1")
		}
		lim.MaxFiles = n
	default:
		return fmt.Errorf("not supported by the json-file driver (use max-size and max-file)")
	}
	return nil
}

// parseSize reads a size as Docker's units.RAMInBytes does: a decimal
// number with an optional binary unit k, m, g, t (b, kb, kib... accepted).
func parseSize(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || num == "" {
		return 0, fmt.Errorf("not a size: use a number with k, m or g, like 10m")
	}
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "b"), "i")
	mult := map[string]float64{"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[unit]
	if mult == 0 {
		return 0, fmt.Errorf("unknown unit %q: use k, m or g, like 10m", unit)
	}
	return int64(f * mult), nil
}
