package compose

import (
	"slices"
	"time"

	"github.com/stackdev/stack/engine"
)

// process is what runs: command, environment, user and stop behaviour.
func (b *serviceBuilder) process() engine.Process {
	s := b.s
	p := engine.Process{
		Entrypoint: cloneCommand(s.Entrypoint),
		Command:    cloneCommand(s.Command),
		Env:        b.environment(),
		WorkingDir: s.WorkingDir,
		User:       s.User,
		GroupAdd:   slices.Clone(s.GroupAdd),
		TTY:        s.Tty,
		StdinOpen:  s.StdinOpen,
		Init:       s.Init != nil && *s.Init,
		StopSignal: s.StopSignal,
		Hostname:   s.Hostname,
		Domainname: s.DomainName,
	}
	if s.StopGracePeriod != nil {
		p.StopGracePeriod = time.Duration(*s.StopGracePeriod)
	}
	return p
}

// cloneCommand keeps the difference between unset (nil: the image's) and
// explicitly empty.
func cloneCommand(c []string) []string {
	if c == nil {
		return nil
	}
	return append([]string{}, c...)
}

// environment is environment merged with env_file (compose-go has already
// merged them, environment winning), as sorted KEY=VALUE. A variable listed
// without a value and unset in the shell is left out, as docker does.
func (b *serviceBuilder) environment() []string {
	var env []string
	for k, v := range b.s.Environment {
		if v != nil {
			env = append(env, k+"="+*v)
		}
	}
	slices.Sort(env)
	return env
}
