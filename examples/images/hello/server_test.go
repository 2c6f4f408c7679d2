package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func newTestServer(t *testing.T, environ ...string) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(newServer("web-1", environ, &http.Client{Timeout: 5 * time.Second}))
	t.Cleanup(ts.Close)
	return ts
}

// do sends one request and returns the status code and body.
func do(t *testing.T, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestRootAnswersHostnameAndSortedEnvironment(t *testing.T) {
	ts := newTestServer(t, "PORT=8080", "GREETING=hi there", "A=1")
	code, body := do(t, "GET", ts.URL+"/")
	want := "hostname: web-1\nA=1\nGREETING=hi there\nPORT=8080\n"
	if code != 200 || body != want {
		t.Fatalf("GET / = %d %q, want 200 %q", code, body, want)
	}
}

func TestUnknownPathIsNotFound(t *testing.T) {
	ts := newTestServer(t)
	if code, _ := do(t, "GET", ts.URL+"/nope"); code != http.StatusNotFound {
		t.Fatalf("GET /nope = %d, want 404", code)
	}
}

func TestCallRelaysStatusAndBody(t *testing.T) {
	other := newTestServer(t, "NAME=other")
	ts := newTestServer(t)
	code, body := do(t, "GET", ts.URL+"/call?url="+other.URL+"/")
	want := "status: 200\nhostname: web-1\nNAME=other\n"
	if code != 200 || body != want {
		t.Fatalf("GET /call = %d %q, want 200 %q", code, body, want)
	}
}

func TestCallAddsHTTPWhenSchemeIsMissing(t *testing.T) {
	other := newTestServer(t)
	ts := newTestServer(t)
	hostPort := strings.TrimPrefix(other.URL, "http://")
	code, body := do(t, "GET", ts.URL+"/call?url="+hostPort+"/healthz")
	if code != 200 || body != "status: 200\nok\n" {
		t.Fatalf("GET /call?url=%s/healthz = %d %q", hostPort, code, body)
	}
}

func TestCallRelaysAnErrorStatus(t *testing.T) {
	other := newTestServer(t)
	ts := newTestServer(t)
	do(t, "GET", other.URL+"/healthz/fail")
	code, body := do(t, "GET", ts.URL+"/call?url="+other.URL+"/healthz")
	if code != 200 || body != "status: 503\nunhealthy\n" {
		t.Fatalf("GET /call to an unhealthy service = %d %q", code, body)
	}
}

func TestCallWithoutURLIsABadRequest(t *testing.T) {
	ts := newTestServer(t)
	code, body := do(t, "GET", ts.URL+"/call")
	if code != http.StatusBadRequest || !strings.Contains(body, "missing ?url=") {
		t.Fatalf("GET /call = %d %q, want 400 naming the missing url", code, body)
	}
}

func TestCallToAnUnreachableServiceIsABadGateway(t *testing.T) {
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	ts := newTestServer(t)
	code, body := do(t, "GET", ts.URL+"/call?url="+gone.URL+"/")
	if code != http.StatusBadGateway || !strings.Contains(body, "call "+gone.URL+"/") {
		t.Fatalf("GET /call to a closed port = %d %q, want 502 naming the url", code, body)
	}
}

func TestHealthStartsOK(t *testing.T) {
	ts := newTestServer(t)
	if code, body := do(t, "GET", ts.URL+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("GET /healthz = %d %q, want 200 ok", code, body)
	}
}

func TestHealthFlipsWithPOST(t *testing.T) {
	ts := newTestServer(t)
	if code, _ := do(t, "POST", ts.URL+"/healthz?status=fail"); code != 200 {
		t.Fatalf("POST /healthz?status=fail = %d", code)
	}
	if code, body := do(t, "GET", ts.URL+"/healthz"); code != 503 || body != "unhealthy\n" {
		t.Fatalf("after fail: GET /healthz = %d %q, want 503 unhealthy", code, body)
	}
	do(t, "POST", ts.URL+"/healthz?status=ok")
	if code, _ := do(t, "GET", ts.URL+"/healthz"); code != 200 {
		t.Fatalf("after ok: GET /healthz = %d, want 200", code)
	}
}

func TestHealthFlipsWithGETPaths(t *testing.T) {
	ts := newTestServer(t)
	do(t, "GET", ts.URL+"/healthz/fail")
	if code, _ := do(t, "GET", ts.URL+"/healthz"); code != 503 {
		t.Fatalf("after /healthz/fail: GET /healthz = %d, want 503", code)
	}
	do(t, "GET", ts.URL+"/healthz/ok")
	if code, _ := do(t, "GET", ts.URL+"/healthz"); code != 200 {
		t.Fatalf("after /healthz/ok: GET /healthz = %d, want 200", code)
	}
}

func TestHealthRejectsAnUnknownStatus(t *testing.T) {
	ts := newTestServer(t)
	code, body := do(t, "POST", ts.URL+"/healthz?status=maybe")
	if code != http.StatusBadRequest || !strings.Contains(body, `status "maybe": want fail or ok`) {
		t.Fatalf("POST /healthz?status=maybe = %d %q", code, body)
	}
	if code, _ := do(t, "GET", ts.URL+"/healthz"); code != 200 {
		t.Fatalf("a rejected status changed /healthz to %d", code)
	}
}

func TestListenPort(t *testing.T) {
	for _, tc := range []struct{ in, want, err string }{
		{"", "8080", ""},
		{"9000", "9000", ""},
		{"0", "", `PORT="0" is not a port number`},
		{"http", "", `PORT="http" is not a port number`},
		{"70000", "", `PORT="70000" is not a port number`},
	} {
		got, err := listenPort(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("listenPort(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("listenPort(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}
