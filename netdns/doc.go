// Package netdns is stack's embedded DNS server and the only importer of
// github.com/miekg/dns: it serves a table of names per network (service
// names, container names, aliases) on each stack network's gateway address
// and forwards everything else to the configured upstream resolvers.
//
// It may import only the standard library and miekg/dns.
package netdns
