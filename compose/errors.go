package compose

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// ErrInvalid is wrapped by every error that a change to the compose files
// fixes: errors.Is(err, ErrInvalid) tells a bad file from a failing host.
var ErrInvalid = errors.New("invalid compose file")

// Error is one problem in the compose files, located as precisely as the
// loader allows: the file, the service and the key.
type Error struct {
	File    string // relative to the project directory when inside it
	Service string // empty for top-level keys
	Key     string // e.g. "ports" or "deploy.placement"
	Err     error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File + ": ")
	}
	if e.Service != "" {
		fmt.Fprintf(&b, "service %q: ", e.Service)
	}
	if e.Key != "" {
		b.WriteString(e.Key + ": ")
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() []error { return []error{e.Err, ErrInvalid} }

// problems collects the errors of one load so they are reported together,
// sorted, instead of one per run.
type problems struct {
	loc  *locator
	errs []error
}

// add records a problem with a service key (service may be empty for a
// top-level key such as "networks.front").
func (p *problems) add(service, key string, err error) {
	p.errs = append(p.errs, &Error{File: p.loc.fileOf(service, key), Service: service, Key: key, Err: err})
}

func (p *problems) addf(service, key, format string, args ...any) {
	p.add(service, key, fmt.Errorf(format, args...))
}

// err returns every problem joined, in a stable order, or nil.
func (p *problems) err() error {
	if len(p.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(p.errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	p.errs = slices.CompactFunc(p.errs, func(a, b error) bool { return a.Error() == b.Error() })
	return errors.Join(p.errs...)
}
