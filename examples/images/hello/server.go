package main

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
)

// maxCallBody bounds how much of a called service's answer is relayed.
const maxCallBody = 1 << 20

// server holds what the handlers answer with.
type server struct {
	hostname  string
	environ   []string // sorted
	client    *http.Client
	unhealthy atomic.Bool
}

// newServer returns the handler for all of hello's endpoints.
func newServer(hostname string, environ []string, client *http.Client) http.Handler {
	s := &server{hostname: hostname, environ: slices.Sorted(slices.Values(environ)), client: client}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.root)
	mux.HandleFunc("GET /call", s.call)
	mux.HandleFunc("GET /healthz", s.health)
	mux.HandleFunc("POST /healthz", s.setHealthFromQuery)
	mux.HandleFunc("GET /healthz/{status}", s.setHealthFromPath)
	return mux
}

// root answers with the hostname and the environment, one variable a line.
func (s *server) root(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "hostname: %s\n", s.hostname)
	for _, kv := range s.environ {
		fmt.Fprintln(w, kv)
	}
}

// call fetches ?url= and relays its status and body. A URL without a scheme
// gets http://, so /call?url=web:8080/ reaches the service named web.
func (s *server) call(w http.ResponseWriter, r *http.Request) {
	target := r.URL.Query().Get("url")
	if target == "" {
		http.Error(w, "missing ?url=, e.g. /call?url=http://web:8080/", http.StatusBadRequest)
		return
	}
	if !strings.Contains(target, "://") {
		target = "http://" + target
	}
	resp, err := s.client.Get(target)
	if err != nil {
		http.Error(w, fmt.Sprintf("call %s: %v", target, err), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "status: %d\n", resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, maxCallBody))
}

// health answers 200 "ok" or 503 "unhealthy".
func (s *server) health(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if s.unhealthy.Load() {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "unhealthy")
		return
	}
	fmt.Fprintln(w, "ok")
}

func (s *server) setHealthFromQuery(w http.ResponseWriter, r *http.Request) {
	s.setHealth(w, r.URL.Query().Get("status"))
}

func (s *server) setHealthFromPath(w http.ResponseWriter, r *http.Request) {
	s.setHealth(w, r.PathValue("status"))
}

// setHealth flips /healthz to "fail" or back to "ok" and answers like it.
func (s *server) setHealth(w http.ResponseWriter, status string) {
	switch status {
	case "fail":
		s.unhealthy.Store(true)
	case "ok":
		s.unhealthy.Store(false)
	default:
		http.Error(w, fmt.Sprintf("status %q: want fail or ok", status), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "healthz set to %s\n", status)
}
