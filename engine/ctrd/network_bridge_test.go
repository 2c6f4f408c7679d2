package ctrd

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/stackdev/stack/engine"
)

// bridgeIPMasq is the bridge plugin's ipMasq in a network's conflist.
func bridgeIPMasq(t *testing.T, c *Client, rec networkRecord) bool {
	t.Helper()
	raw, err := rec.conflist(c, attachOpts{primary: true})
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Plugins []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(raw, &conf); err != nil {
		t.Fatal(err)
	}
	for _, p := range conf.Plugins {
		if p["type"] == "bridge" {
			return p["ipMasq"] == true
		}
	}
	t.Fatalf("no bridge plugin in %s", raw)
	return false
}

func masqueradeRules(rules [][]string) []string {
	var out []string
	for _, r := range rules {
		if slices.Contains(r, "MASQUERADE") {
			out = append(out, strings.Join(r, " "))
		}
	}
	return out
}

func TestANewNetworkMasqueradesItsSubnetWithOneRuleAndNotPerContainer(t *testing.T) {
	c := &Client{opts: Options{StateDir: t.TempDir()}}
	rec, err := c.planNetwork(engine.NetworkSpec{Name: "demo_default", Subnet: "10.250.7.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	if !rec.SubnetMasquerade {
		t.Fatalf("a new network does not masquerade its subnet: %+v", rec)
	}
	if bridgeIPMasq(t, c, rec) {
		t.Error("the bridge plugin still masquerades per container")
	}
	want := "POSTROUTING -t nat -s 10.250.7.0/24 ! -o " + rec.Bridge + " ! -d 224.0.0.0/4 -j MASQUERADE -m comment --comment stack network demo_default"
	if got := masqueradeRules(bridgeRules(rec)); len(got) != 1 || got[0] != want {
		t.Errorf("masquerade rules %q, want [%q]", got, want)
	}
}

func TestAnInternalNetworkIsNotMasqueraded(t *testing.T) {
	c := &Client{opts: Options{StateDir: t.TempDir()}}
	rec, err := c.planNetwork(engine.NetworkSpec{Name: "demo_sealed", Subnet: "10.250.8.0/24", Internal: true})
	if err != nil {
		t.Fatal(err)
	}
	if bridgeIPMasq(t, c, rec) || len(masqueradeRules(bridgeRules(rec))) > 0 {
		t.Errorf("internal network masqueraded: ipMasq %v, rules %q", bridgeIPMasq(t, c, rec), masqueradeRules(bridgeRules(rec)))
	}
}

func TestANetworkOfAnEarlierVersionKeepsTheBridgePluginsMasquerade(t *testing.T) {
	c := &Client{opts: Options{StateDir: t.TempDir()}}
	// As an earlier stack wrote it: no subnetMasquerade field.
	var rec networkRecord
	if err := json.Unmarshal([]byte(`{"name":"old_default","subnet":"10.250.9.0/24","gateway":"10.250.9.1","bridge":"stk00000000"}`), &rec); err != nil {
		t.Fatal(err)
	}
	if !bridgeIPMasq(t, c, rec) {
		t.Error("a container joining a network made by an earlier version would not be masqueraded")
	}
	if got := masqueradeRules(bridgeRules(rec)); len(got) > 0 {
		t.Errorf("an earlier version's network gets a subnet rule as well: %q", got)
	}
}
