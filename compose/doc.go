// Package compose is the only user of compose-go: it finds and merges the
// compose files (-f, overrides, include, extends), reads .env and --env-file,
// interpolates, applies profiles, validates, and turns the project into a
// Desired state: one engine spec per container replica, network and volume,
// each with a config hash. No compose-go type leaves this package.
//
// Load is the entry point for commands that converge (up, plan, down);
// LoadModel returns the normalised model that `stack config` prints.
// Both report every problem of the files at once, each *Error naming the
// file, the service and the key; errors.Is(err, ErrInvalid) tells a bad file
// from a failing host.
//
// Files:
//   - load.go: LoadOptions, file discovery, .env, project name.
//   - model.go: Model, the compose-go load, service selection and scale.
//   - unknown.go, schema.go, spec_paths.go: unknown keys and wrong types.
//   - supported.go: the keys stack translates; any other is an error.
//   - validate.go, validate_net.go, order.go: references, limits, cycles,
//     subnets and addresses.
//   - build.go and one file per concern for the service → container spec
//     translation: labels.go, process.go, mounts.go, netconfig.go, ports.go,
//     resources.go, security.go, files.go (secrets and configs),
//     lifecycle.go (restart, healthcheck, logging, pull policy).
//   - specs.go: networks and volumes; hash.go: config hashes; image.go.
//
// It may import engine, compose-go and yaml.v3.
package compose
