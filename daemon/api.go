package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// The status API: HTTP with JSON over the unix socket.
const (
	pathStatus  = "/v1/status"
	pathRefresh = "/v1/refresh"
)

func (d *Daemon) apiServer() *http.Server {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+pathStatus, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, d.Status())
	})
	mux.HandleFunc("POST "+pathRefresh, func(w http.ResponseWriter, r *http.Request) {
		if err := d.Refresh(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		writeJSON(w, d.Status())
	})
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Listen opens the daemon's socket at path, readable and writable by root
// only (directory 0700 when it creates it, socket 0600). It holds path.lock
// while the listener is open, so two daemons started at once cannot both
// serve. A socket file that nothing answers on is left over from a killed
// daemon and replaced; one that answers is another daemon, and an error.
func Listen(ctx context.Context, path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create the daemon's socket directory: %w", err)
		}
	}
	lock, err := lockExclusive(path + ".lock")
	if err != nil {
		return nil, err
	}
	l, err := listenUnix(ctx, path)
	if err != nil {
		lock.Close()
		return nil, err
	}
	return &lockedListener{Listener: l, lock: lock}, nil
}

// lockExclusive takes path's lock without waiting. The holder removes the
// file when it is done, so a lock taken on a file that was removed or
// replaced meanwhile is dropped and taken again on the current one.
func lockExclusive(path string) (*os.File, error) {
	for range 5 {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open the daemon's lock: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			return nil, fmt.Errorf("another stack daemon holds %s: %w", path, ErrRunning)
		}
		if sameFile(f, path) {
			return f, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("lock %s: it keeps being replaced: %w", path, ErrRunning)
}

func sameFile(f *os.File, path string) bool {
	held, err := f.Stat()
	if err != nil {
		return false
	}
	now, err := os.Stat(path)
	return err == nil && os.SameFile(held, now)
}

// ErrRunning means another daemon serves, or is starting on, the socket.
var ErrRunning = errors.New("a stack daemon is already running")

func listenUnix(ctx context.Context, path string) (net.Listener, error) {
	pctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	if _, err := Dial(path).Status(pctx); err == nil {
		return nil, fmt.Errorf("%w on %s: stop it first, or use another socket", ErrRunning, path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove stale daemon socket: %w", err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on the daemon socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, fmt.Errorf("restrict the daemon socket to root: %w", err)
	}
	return l, nil
}

// lockedListener releases the lock when the listener closes.
type lockedListener struct {
	net.Listener
	lock *os.File
	once sync.Once
}

func (l *lockedListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() {
		_ = os.Remove(l.lock.Name()) // before unlocking: see lockExclusive
		l.lock.Close()
	})
	return err
}

// Client talks to a daemon over its socket.
type Client struct {
	socket string
	http   *http.Client
}

// Dial returns a client for the daemon on socket; it connects per request.
func Dial(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		DisableKeepAlives: true,
	}
	return &Client{socket: socket, http: &http.Client{Transport: tr}}
}

// Status asks the daemon what it serves.
func (c *Client) Status(ctx context.Context) (Status, error) {
	return c.do(ctx, http.MethodGet, pathStatus)
}

// Refresh makes the daemon observe now, and returns its status once the
// answers show what was observed.
func (c *Client) Refresh(ctx context.Context) (Status, error) {
	return c.do(ctx, http.MethodPost, pathRefresh)
}

func (c *Client) do(ctx context.Context, method, path string) (Status, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://stack-daemon"+path, nil)
	if err != nil {
		return Status{}, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return Status{}, fmt.Errorf("stack daemon on %s: %w", c.socket, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return Status{}, fmt.Errorf("stack daemon on %s: %s: %s", c.socket, resp.Status, msg)
	}
	var st Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return Status{}, fmt.Errorf("stack daemon on %s: bad status: %w", c.socket, err)
	}
	return st, nil
}
