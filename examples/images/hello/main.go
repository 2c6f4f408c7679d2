// Command hello is the example service of the stack examples: a small static
// HTTP server that answers with its hostname and environment, calls other
// services by name, and has a health endpoint that tests can flip.
//
//	GET  /                 hostname and environment, one KEY=value a line, sorted
//	GET  /call?url=URL     fetches URL (scheme optional: "web:8080/") and returns its status and body
//	GET  /healthz          200 "ok" or 503 "unhealthy"
//	POST /healthz?status=  fail|ok flips the answer of /healthz
//	GET  /healthz/fail     same as POST /healthz?status=fail (for wget)
//	GET  /healthz/ok       same as POST /healthz?status=ok
//
// It listens on $PORT (default 8080) and shuts down gracefully on SIGTERM.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	port, err := listenPort(os.Getenv("PORT"))
	if err != nil {
		return err
	}
	hostname, _ := os.Hostname()
	srv := &http.Server{
		Addr:              ":" + port,
		Handler:           logRequests(newServer(hostname, os.Environ(), &http.Client{Timeout: 10 * time.Second})),
		ReadHeaderTimeout: 10 * time.Second,
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	l, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	log.Printf("hello: listening on :%s", port)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Printf("hello: shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	log.Printf("hello: stopped")
	return nil
}

// listenPort validates $PORT, defaulting to 8080.
func listenPort(v string) (string, error) {
	if v == "" {
		return "8080", nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("PORT=%q is not a port number (1-65535)", v)
	}
	return v, nil
}

// logRequests writes one line per request, except health checks, which a
// probe would otherwise repeat every few seconds.
func logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r)
		if r.URL.Path != "/healthz" {
			log.Printf("hello: %s %s from %s", r.Method, r.URL.RequestURI(), r.RemoteAddr)
		}
	})
}
