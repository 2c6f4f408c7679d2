// Package compose is the only user of compose-go: it finds and merges the
// compose files (-f, overrides, include, extends), reads .env and --env-file,
// interpolates, applies profiles, validates, and turns the project into a
// Desired state: one engine spec per container replica, network and volume,
// each with a config hash. No compose-go type leaves this package.
//
// It may import engine, compose-go and yaml.v3.
package compose
