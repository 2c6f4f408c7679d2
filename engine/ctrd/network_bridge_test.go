package ctrd

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/stackdev/stack/engine"
)

// plugins are the plugins of a network's conflist by type.
func plugins(t *testing.T, c *Client, rec networkRecord) map[string]map[string]any {
	t.Helper()
	return attachmentPlugins(t, c, rec, attachOpts{primary: true})
}

// attachmentPlugins are the plugins of one attachment's conflist by type.
func attachmentPlugins(t *testing.T, c *Client, rec networkRecord, o attachOpts) map[string]map[string]any {
	t.Helper()
	raw, err := rec.conflist(c, o)
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Plugins []map[string]any `json:"plugins"`
	}
	if err := json.Unmarshal(raw, &conf); err != nil {
		t.Fatal(err)
	}
	byType := map[string]map[string]any{}
	for _, p := range conf.Plugins {
		byType[p["type"].(string)] = p
	}
	return byType
}

// bridgeIPMasq is the bridge plugin's ipMasq in a network's conflist.
func bridgeIPMasq(t *testing.T, c *Client, rec networkRecord) bool {
	t.Helper()
	return plugins(t, c, rec)["bridge"]["ipMasq"] == true
}

func rulesIn(rules [][]string, chain string) []string {
	var out []string
	for _, r := range rules {
		if r[0] == chain {
			out = append(out, strings.Join(r, " "))
		}
	}
	return out
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
	if !rec.SubnetRules {
		t.Fatalf("a new network does not masquerade its subnet: %+v", rec)
	}
	if bridgeIPMasq(t, c, rec) {
		t.Error("the bridge plugin still masquerades per container")
	}
	want := "POSTROUTING -t nat -s 10.250.7.0/24 ! -o " + rec.Bridge + " ! -d 224.0.0.0/4 -m addrtype ! --src-type LOCAL -j MASQUERADE -m comment --comment stack network demo_default"
	if got := masqueradeRules(bridgeRules(rec)); len(got) != 1 || got[0] != want {
		t.Errorf("masquerade rules %q, want [%q]", got, want)
	}
}

func TestANewNetworkAcceptsItsForwardedTrafficWithTwoRulesAndNoFirewallPlugin(t *testing.T) {
	c := &Client{opts: Options{StateDir: t.TempDir()}}
	for _, internal := range []bool{false, true} {
		rec, err := c.planNetwork(engine.NetworkSpec{Name: "demo_default", Subnet: "10.250.7.0/24", Internal: internal})
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := plugins(t, c, rec)["firewall"]; ok {
			t.Errorf("internal %v: the firewall plugin is still in the chain", internal)
		}
		comment := " -m comment --comment stack network demo_default"
		want := []string{
			chainForward + " -s 10.250.7.0/24 -i " + rec.Bridge + " -j ACCEPT" + comment,
			chainForward + " -d 10.250.7.0/24 -o " + rec.Bridge + " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT" + comment,
		}
		if got := rulesIn(bridgeRules(rec), chainForward); !slices.Equal(got, want) {
			t.Errorf("internal %v: forward rules\n%q, want\n%q", internal, got, want)
		}
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
	// As an earlier stack wrote it: no subnetRules field.
	var rec networkRecord
	if err := json.Unmarshal([]byte(`{"name":"old_default","subnet":"10.250.9.0/24","gateway":"10.250.9.1","bridge":"stk00000000"}`), &rec); err != nil {
		t.Fatal(err)
	}
	if !bridgeIPMasq(t, c, rec) {
		t.Error("a container joining a network made by an earlier version would not be masqueraded")
	}
	if _, ok := plugins(t, c, rec)["firewall"]; !ok {
		t.Error("a container joining a network made by an earlier version would not get the firewall plugin's accept rules")
	}
	if got := append(masqueradeRules(bridgeRules(rec)), rulesIn(bridgeRules(rec), chainForward)...); len(got) > 0 {
		t.Errorf("an earlier version's network gets subnet rules as well: %q", got)
	}
}

func TestPortmapRunsOnlyForTheAttachmentThatPublishesPorts(t *testing.T) {
	c := &Client{opts: Options{StateDir: t.TempDir()}}
	rec, err := c.planNetwork(engine.NetworkSpec{Name: "demo_default", Subnet: "10.250.7.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	web := []engine.PortBinding{{HostPort: 8080, ContainerPort: 80}}
	for _, tc := range []struct {
		name string
		o    attachOpts
		want bool
	}{
		{"primary attachment with published ports", attachOpts{primary: true, ports: web}, true},
		{"primary attachment without ports", attachOpts{primary: true}, false},
		{"second attachment of a container with published ports", attachOpts{ports: web}, false},
	} {
		_, got := attachmentPlugins(t, c, rec, tc.o)["portmap"]
		if got != tc.want {
			t.Errorf("%s: portmap in the conflist = %v, want %v", tc.name, got, tc.want)
		}
		if _, mapped := capArgs(tc.o, 24)["portMappings"]; mapped != got {
			t.Errorf("%s: port mappings passed = %v but portmap in the conflist = %v", tc.name, mapped, got)
		}
	}
}
