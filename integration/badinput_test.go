package integration

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad input gets one clear error naming the file, the service and the key,
// exit 1, and the host is left exactly as it was.
func TestBadInputChangesNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port

	cases := []struct {
		name string
		yaml string
		args []string
		want []string
	}{
		{
			name: "invalid yaml",
			yaml: "services:\n  web:\n   image: busybox\n  - oops\n",
			want: []string{"compose.yaml", "yaml:"},
		},
		{
			name: "unknown key",
			yaml: "services:\n  web:\n    image: busybox\n    imagee: busybox\n",
			want: []string{"compose.yaml", `service "web"`, "imagee: unknown key"},
		},
		{
			name: "wrong type",
			yaml: "services:\n  web:\n    image: busybox\n    ports: 8080\n",
			want: []string{"compose.yaml", `service "web"`, "ports"},
		},
		{
			name: "required variable",
			yaml: "services:\n  web:\n    image: busybox\n    environment:\n      DB: ${STACK_IT_UNSET_DB:?set the database}\n",
			want: []string{"STACK_IT_UNSET_DB", "set the database"},
		},
		{
			name: "depends_on cycle",
			yaml: "services:\n  a:\n    image: busybox\n    depends_on: [b]\n  b:\n    image: busybox\n    depends_on: [a]\n",
			want: []string{"compose.yaml", "a -> b -> a"},
		},
		{
			name: "two services on one host port",
			yaml: "services:\n  a:\n    image: hello\n    ports: [\"18765:8080\"]\n  b:\n    image: hello\n    ports: [\"18765:8080\"]\n",
			want: []string{"compose.yaml", "ports", "18765"},
		},
		{
			name: "secret file missing",
			yaml: "services:\n  app:\n    image: busybox\n    secrets: [pw]\nsecrets:\n  pw:\n    file: ./nope.txt\n",
			want: []string{"compose.yaml", `service "app"`, "secrets", "nope.txt"},
		},
		{
			name: "missing image",
			yaml: "services:\n  app:\n    image: nosuch-image:1\n",
			args: []string{"--pull", "never"},
			want: []string{"nosuch-image"},
		},
		{
			name: "host port taken",
			yaml: fmt.Sprintf("services:\n  ok:\n    image: busybox\n    command: [sleep, \"60\"]\n  web:\n    image: hello\n    ports: [\"127.0.0.1:%d:8080\"]\n", busyPort),
			want: []string{`service "web"`, "ports", fmt.Sprintf("127.0.0.1:%d", busyPort), "already in use", "nothing was changed"},
		},
	}
	p := newProjectEnv(t, "services: {}\n")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p.writeCompose(tc.yaml)
			r := p.run(append([]string{"up", "-d"}, tc.args...)...)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("error lacks %q:\n%s", w, r.stderr)
				}
			}
			st := p.observe()
			if len(st.Containers)+len(st.Networks)+len(st.Volumes) != 0 {
				t.Errorf("the host changed: %d containers, %d networks, %d volumes", len(st.Containers), len(st.Networks), len(st.Volumes))
			}
			if entries, _ := os.ReadDir(filepath.Join(p.stateDir, "containers")); len(entries) != 0 {
				t.Errorf("container state left behind: %d entries", len(entries))
			}
		})
	}
}
