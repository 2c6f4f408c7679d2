package main

import (
	"bytes"
	"testing"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/engine/ctrd"
)

func TestStatsRowsUseDockersUnits(t *testing.T) {
	ctr := engine.Container{ID: "0123456789abcdef0123", Name: "demo-web-1"}
	sample := ctrd.StatsSample{MemUsage: 3 << 19, MemLimit: 1 << 30, NetRx: 1234, NetTx: 5_600_000, BlockRead: 0, BlockWrite: 4096, PIDs: 3}
	row := formatStats(ctr, "0123456789ab", ctrd.StatsFigures{CPUPercent: 99.456, MemPercent: 0.1465, StatsSample: sample})
	want := statsRow{BlockIO: "0B / 4.1kB", CPUPerc: "99.46%", Container: ctr.ID, ID: "0123456789ab", MemPerc: "0.15%",
		MemUsage: "1.5MiB / 1GiB", Name: "demo-web-1", NetIO: "1.23kB / 5.6MB", PIDs: "3"}
	if row != want {
		t.Errorf("got  %+v\nwant %+v", row, want)
	}
	var buf bytes.Buffer
	if err := renderStats(&buf, []statsRow{row}, "json"); err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"BlockIO":"0B / 4.1kB","CPUPerc":"99.46%","Container":"0123456789abcdef0123","ID":"0123456789ab","MemPerc":"0.15%","MemUsage":"1.5MiB / 1GiB","Name":"demo-web-1","NetIO":"1.23kB / 5.6MB","PIDs":"3"}` + "\n"
	if buf.String() != wantJSON {
		t.Errorf("json:\n%s\nwant:\n%s", buf.String(), wantJSON)
	}
	buf.Reset()
	renderStats(&buf, []statsRow{row}, "table")
	wantTable := "CONTAINER ID   NAME         CPU %     MEM USAGE / LIMIT   MEM %     NET I/O          BLOCK I/O    PIDS\n" +
		"0123456789ab   demo-web-1   99.46%    1.5MiB / 1GiB       0.15%     1.23kB / 5.6MB   0B / 4.1kB   3\n"
	if buf.String() != wantTable {
		t.Errorf("table:\n%s\nwant:\n%s", buf.String(), wantTable)
	}
}

func TestStatsRowsTruncateIDsUnlessNoTrunc(t *testing.T) {
	ctrs := []engine.Container{{ID: "0123456789abcdef0123", Name: "a"}}
	if r := statsRows(ctrs, nil, nil, false); r[0].ID != "0123456789ab" || r[0].PIDs != "0" {
		t.Errorf("truncated: %+v", r[0])
	}
	if r := statsRows(ctrs, nil, nil, true); r[0].ID != ctrs[0].ID {
		t.Errorf("--no-trunc: %+v", r[0])
	}
}
