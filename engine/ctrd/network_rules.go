package ctrd

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"slices"
	"strings"
)

// A network's rules are read with one iptables-save and changed with one
// iptables-restore --noflush, which commits each table at once: adding or
// removing a network costs two iptables processes, where a -C/-A or -D pair
// per rule, the chains' checks and the FORWARD jumps' cost fifteen to twenty
// (a sixth of a one-service `up` or `down`).

// ruleset is the host's tables as iptables-save prints them.
type ruleset struct {
	chains map[string][]string // table → its chains
	rules  map[string][]string // table → its "-A CHAIN ..." lines, in order
}

func readRuleset(ctx context.Context) (ruleset, error) {
	out, err := exec.CommandContext(ctx, "iptables-save").Output()
	if err != nil {
		return ruleset{}, fmt.Errorf("iptables-save: %w", err)
	}
	return parseRuleset(string(out)), nil
}

func parseRuleset(out string) ruleset {
	rs := ruleset{chains: map[string][]string{}, rules: map[string][]string{}}
	table := ""
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "*"):
			table = line[1:]
		case strings.HasPrefix(line, ":"):
			if f := strings.Fields(line[1:]); len(f) > 0 {
				rs.chains[table] = append(rs.chains[table], f[0])
			}
		case strings.HasPrefix(line, "-A "):
			rs.rules[table] = append(rs.rules[table], line)
		}
	}
	return rs
}

// owned are the rules whose comment names the network, by table.
func (rs ruleset) owned(network string) map[string][]string {
	mark := `--comment "stack network ` + network + `"`
	out := map[string][]string{}
	for table, lines := range rs.rules {
		for _, l := range lines {
			if i := strings.Index(l, mark); i >= 0 && (i+len(mark) == len(l) || l[i+len(mark)] == ' ') {
				out[table] = append(out[table], l)
			}
		}
	}
	return out
}

// othersInStackChains reports whether a network other than this one has
// rules in stack's chains (of any state directory on the host).
func (rs ruleset) othersInStackChains(network string) bool {
	mine := rs.owned(network)["filter"]
	for _, l := range rs.rules["filter"] {
		f := strings.Fields(l)
		if len(f) > 1 && slices.Contains(stackChains, f[1]) && !slices.Contains(mine, l) {
			return true
		}
	}
	return false
}

// restoreScript collects iptables-restore commands by table.
type restoreScript struct {
	tables []string
	lines  map[string][]string
}

func (s *restoreScript) add(table, line string) {
	if s.lines == nil {
		s.lines = map[string][]string{}
	}
	if _, ok := s.lines[table]; !ok {
		s.tables = append(s.tables, table)
	}
	s.lines[table] = append(s.lines[table], line)
}

// remove deletes a rule iptables-save printed.
func (s *restoreScript) remove(table, saved string) {
	s.add(table, "-D"+strings.TrimPrefix(saved, "-A"))
}

// appendRule adds one of the rules this package writes as iptables
// arguments without the verb (a chain, its matches, -t TABLE anywhere).
func (s *restoreScript) appendRule(rule []string) {
	table := "filter"
	var args []string
	for i := 0; i < len(rule); i++ {
		if rule[i] == "-t" && i+1 < len(rule) {
			table = rule[i+1]
			i++
			continue
		}
		if strings.ContainsAny(rule[i], " \"") {
			args = append(args, `"`+strings.ReplaceAll(rule[i], `"`, `\"`)+`"`)
			continue
		}
		args = append(args, rule[i])
	}
	s.add(table, "-A "+strings.Join(args, " "))
}

func (s restoreScript) text() string {
	var b strings.Builder
	for _, t := range s.tables {
		fmt.Fprintf(&b, "*%s\n%s\nCOMMIT\n", t, strings.Join(s.lines[t], "\n"))
	}
	return b.String()
}

// apply runs the script; nothing to do is not an error.
func (s restoreScript) apply(ctx context.Context) error {
	if len(s.tables) == 0 {
		return nil
	}
	cmd := exec.CommandContext(ctx, "iptables-restore", "-w", "--noflush")
	cmd.Stdin = strings.NewReader(s.text())
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("iptables-restore: %w: %s\n%s", err, bytes.TrimSpace(out), s.text())
	}
	return nil
}

// replaceBridgeRules creates stack's chains when missing, puts their FORWARD
// jumps first and replaces the rules that name the network with its
// bridgeRules: duplicates (two processes that both added them) and rules a
// reboot flushed come out right alike.
func replaceBridgeRules(rs ruleset, rec networkRecord) restoreScript {
	var s restoreScript
	for _, chain := range stackChains {
		if !slices.Contains(rs.chains["filter"], chain) {
			s.add("filter", "-N "+chain)
		}
	}
	s.putJumpsFirst(rs.rules["filter"])
	owned := rs.owned(rec.Name)
	for _, table := range []string{"filter", "nat"} {
		for _, l := range owned[table] {
			s.remove(table, l)
		}
	}
	for _, rule := range bridgeRules(rec) {
		s.appendRule(rule)
	}
	return s
}

// removeBridgeRules deletes the rules that name the network and, when no
// other network has rules in stack's chains, the chains and their jumps.
func removeBridgeRules(rs ruleset, rec networkRecord) restoreScript {
	var s restoreScript
	owned := rs.owned(rec.Name)
	for _, table := range []string{"filter", "nat"} {
		for _, l := range owned[table] {
			s.remove(table, l)
		}
	}
	if rs.othersInStackChains(rec.Name) {
		return s
	}
	for _, l := range rs.rules["filter"] {
		if slices.Contains(forwardJumps, l) {
			s.remove("filter", l)
		}
	}
	for _, chain := range []string{chainIsolation1, chainIsolation2, chainForward} {
		if slices.Contains(rs.chains["filter"], chain) {
			s.add("filter", "-X "+chain)
		}
	}
	return s
}

// prunePortChains deletes portmap's shared nat chains (sharedPortChains)
// and the jumps of the built-in chains to them, unless a CNI-DN-* chain
// shows that a container still publishes a port.
func (s *restoreScript) prunePortChains(rs ruleset) {
	nat := rs.chains["nat"]
	if slices.ContainsFunc(nat, func(ch string) bool { return strings.HasPrefix(ch, "CNI-DN-") }) {
		return
	}
	for _, l := range rs.rules["nat"] {
		f := strings.Fields(l)
		if len(f) >= 4 && slices.Contains([]string{"PREROUTING", "OUTPUT", "POSTROUTING"}, f[1]) &&
			f[len(f)-2] == "-j" && slices.Contains(sharedPortChains, f[len(f)-1]) {
			s.remove("nat", l)
		}
	}
	// All flushed before any is deleted: they may jump to each other.
	var present []string
	for _, chain := range sharedPortChains {
		if slices.Contains(nat, chain) {
			present = append(present, chain)
			s.add("nat", "-F "+chain)
		}
	}
	for _, chain := range present {
		s.add("nat", "-X "+chain)
	}
}

// putJumpsFirst moves stack's FORWARD jumps to the top, in order, unless
// they are there.
func (s *restoreScript) putJumpsFirst(filter []string) {
	if jumpsFirst(filter) {
		return
	}
	for _, l := range filter {
		if slices.Contains(forwardJumps, l) {
			s.remove("filter", l)
		}
	}
	for _, chain := range []string{chainForward, chainIsolation1} {
		s.add("filter", "-I FORWARD 1 -j "+chain)
	}
}

// jumpsFirst reports whether FORWARD begins with stack's jumps, in order.
func jumpsFirst(filter []string) bool {
	var forward []string
	for _, l := range filter {
		if strings.HasPrefix(l, "-A FORWARD ") {
			forward = append(forward, l)
		}
	}
	return len(forward) >= len(forwardJumps) && slices.Equal(forward[:len(forwardJumps)], forwardJumps)
}

// changeRules reads the tables, builds a script from them and applies it,
// once more on a fresh read if another process changed them in between.
func changeRules(ctx context.Context, build func(ruleset) restoreScript) (ruleset, error) {
	var err error
	for range 2 {
		var rs ruleset
		if rs, err = readRuleset(ctx); err != nil {
			return rs, err
		}
		if err = build(rs).apply(ctx); err == nil {
			return rs, nil
		}
	}
	return ruleset{}, err
}
