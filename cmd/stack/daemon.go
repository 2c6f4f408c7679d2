package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stackdev/stack/compose"
	"github.com/stackdev/stack/daemon"
	"github.com/stackdev/stack/engine/ctrd"
)

func init() { registerCommand(newDaemonCommand) }

type daemonFlags struct {
	socket     string
	upstreams  string
	ttl        time.Duration
	resolvConf string
	format     string
}

func newDaemonCommand(a *app) *cobra.Command {
	var f daemonFlags
	cmd := &cobra.Command{
		Use:   "daemon",
		Short: "Run the per-host daemon (DNS for service names, healthchecks, restart policies) in the foreground",
		Long: "Run the per-host daemon in the foreground, as a service manager does (examples/systemd/stack.service).\n" +
			"It serves DNS for service names on each stack network's gateway and follows containerd's events.\n" +
			"It runs healthchecks and restarts containers as their restart policy says; one the user stopped stays stopped.\n" +
			"Commands that need it (`stack up`) start it detached when nothing answers on its socket.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runDaemon(cmd.Context(), &f)
		},
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.socket, "socket", "", "The daemon's unix socket (env STACK_DAEMON_SOCKET; default "+daemon.DefaultSocket+")")
	fl := cmd.Flags()
	fl.StringVar(&f.upstreams, "dns-upstreams", os.Getenv("STACK_DNS_UPSTREAMS"), "Resolvers to forward other names to, comma-separated ip[:port] (default: the host's "+daemon.DefaultResolvConf+")")
	fl.DurationVar(&f.ttl, "dns-ttl", 0, "TTL of service-name answers (default 2s)")
	fl.StringVar(&f.resolvConf, "resolv-conf", daemon.DefaultResolvConf, "The host's resolver configuration, re-read when it changes")
	status := &cobra.Command{
		Use:   "status",
		Short: "Show what the daemon serves: networks, listeners, names, upstreams, counters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.daemonStatus(cmd.Context(), &f)
		},
	}
	status.Flags().StringVar(&f.format, "format", "text", "Output format: text or json")
	cmd.AddCommand(status)
	return cmd
}

// daemonSocket is where the daemon serving this installation listens: the
// flag, else STACK_DAEMON_SOCKET, else /run/stack/stack.sock for the
// default containerd, namespace and state directory, and a socket named
// after them otherwise (one daemon serves one namespace and state directory,
// so test installations never share one).
func (a *app) daemonSocket(flag string) string {
	if flag != "" {
		return flag
	}
	if s := os.Getenv("STACK_DAEMON_SOCKET"); s != "" {
		return s
	}
	info := a.daemonInfo("")
	if info.Containerd == ctrd.DefaultAddress && info.Namespace == ctrd.DefaultNamespace && info.StateDir == ctrd.DefaultStateDir {
		return daemon.DefaultSocket
	}
	sum := sha256.Sum256([]byte(info.Containerd + "\x00" + info.Namespace + "\x00" + info.StateDir))
	return filepath.Join(filepath.Dir(daemon.DefaultSocket), fmt.Sprintf("stack-%x.sock", sum[:6]))
}

func (a *app) daemonInfo(socket string) daemon.Info {
	state, err := filepath.Abs(a.opts.stateDir)
	if err != nil {
		state = a.opts.stateDir
	}
	return daemon.Info{Namespace: a.opts.namespace, Containerd: a.opts.address, StateDir: state, Socket: socket}
}

func (a *app) runDaemon(ctx context.Context, f *daemonFlags) error {
	normalGC()
	a.isDaemon = true
	ups, err := parseUpstreams(f.upstreams)
	if err != nil {
		return err
	}
	c, err := a.client(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	sock := a.daemonSocket(f.socket)
	l, err := daemon.Listen(ctx, sock)
	if err != nil {
		return err
	}
	defer l.Close()
	log := a.daemonLogger()
	d := daemon.New(daemon.Config{
		Source: c, Info: a.daemonInfo(sock), Upstreams: ups, TTL: f.ttl,
		ResolvConf: f.resolvConf, StateDir: a.daemonInfo("").StateDir, Logger: log,
		Watch: []string{filepath.Join(a.opts.stateDir, "networks")},
	})
	log.Info("stack daemon: serving", "socket", sock, "namespace", a.opts.namespace, "state", a.opts.stateDir, "pid", os.Getpid())
	go keepDaemonSmall(ctx, d.DNS()) // resident memory: see daemon_mem.go
	err = d.Run(ctx, l)
	if errors.Is(err, daemon.ErrStateDirGone) {
		log.Info("stack daemon: exiting", "reason", err)
		return nil
	}
	return err
}

// daemonLogger logs to stderr (the service manager's journal, or the log
// file of a daemon started on demand), with debug details under --debug.
func (a *app) daemonLogger() *slog.Logger {
	level := slog.LevelInfo
	if a.opts.debug {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
}

// parseUpstreams reads "ip[:port],..." (IPv6 as [ip]:port or bare).
func parseUpstreams(s string) ([]netip.AddrPort, error) {
	var out []netip.AddrPort
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		if ap, err := netip.ParseAddrPort(part); err == nil {
			out = append(out, ap)
			continue
		}
		ip, err := netip.ParseAddr(strings.Trim(part, "[]"))
		if err != nil {
			return nil, fmt.Errorf("DNS upstream %q: want ip or ip:port (STACK_DNS_UPSTREAMS, --dns-upstreams)", part)
		}
		out = append(out, netip.AddrPortFrom(ip, 53))
	}
	return out, nil
}

// ensureDaemon makes sure the daemon serving this installation runs and has
// seen what the command just changed: a running one is asked to refresh
// (it follows containerd's events anyway; this makes `up` return only once
// the names answer); otherwise one is started detached.
func (a *app) ensureDaemon(ctx context.Context) error {
	sock := a.daemonSocket("")
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	st, err := daemon.Dial(sock).Refresh(pctx)
	cancel()
	if err == nil {
		return a.checkDaemonInfo(st.Info)
	}
	return a.startDaemon(ctx, sock)
}

func (a *app) checkDaemonInfo(got daemon.Info) error {
	want := a.daemonInfo(got.Socket)
	if got != want {
		return fmt.Errorf("the stack daemon on %s serves namespace %q, state directory %s and containerd %s, not this installation's; set STACK_DAEMON_SOCKET to give this one its own daemon",
			got.Socket, got.Namespace, got.StateDir, got.Containerd)
	}
	return nil
}

// startDaemon runs `stack daemon` detached in its own session, logging to
// <state>/daemon.log, and waits until its socket answers.
func (a *app) startDaemon(ctx context.Context, sock string) error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("start the stack daemon: %w", err)
	}
	logPath := filepath.Join(a.opts.stateDir, "daemon.log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("start the stack daemon: open its log: %w", err)
	}
	defer logf.Close()
	args := []string{"--address", a.opts.address, "--namespace", a.opts.namespace, "--state-dir", a.opts.stateDir}
	if a.opts.debug {
		args = append(args, "--debug")
	}
	cmd := exec.Command(exe, append(args, "daemon", "--socket", sock)...)
	cmd.Stdout, cmd.Stderr = logf, logf // never the CLI's pipes: the daemon outlives it
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the stack daemon: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ours, err := waitDaemon(ctx, sock, cmd.Process.Pid, exited, 15*time.Second)
	if err != nil {
		return fmt.Errorf("%w; see %s", err, logPath)
	}
	if ours {
		a.daemonNote("info", fmt.Sprintf("stack daemon was not running: started it on %s (log %s)", sock, logPath))
	}
	return nil
}

// waitDaemon polls the socket until a daemon answers; ours says whether it
// is the child pid or another daemon (that won a start race, or was busy).
func waitDaemon(ctx context.Context, sock string, pid int, exited <-chan error, limit time.Duration) (ours bool, err error) {
	deadline := time.Now().Add(limit)
	var childErr error
	for time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := daemon.Dial(sock).Status(pctx)
		cancel()
		if err == nil {
			return st.PID == pid, nil
		}
		select {
		case err := <-exited:
			childErr = fmt.Errorf("the stack daemon exited at start (%v)", err)
			if soon := time.Now().Add(5 * time.Second); soon.Before(deadline) {
				deadline = soon
			}
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	if childErr != nil {
		return false, childErr
	}
	return false, fmt.Errorf("the stack daemon did not answer on %s within %s", sock, limit)
}

func (a *app) daemonStatus(ctx context.Context, f *daemonFlags) error {
	sock := a.daemonSocket(f.socket)
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := daemon.Dial(sock).Status(pctx)
	if err != nil {
		return fmt.Errorf("no stack daemon answers on %s (`stack up` starts it, or run `stack daemon`): %w", sock, err)
	}
	switch f.format {
	case "json":
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	case "text", "":
		return renderDaemonStatus(a.stdout, st, time.Now())
	}
	return fmt.Errorf("invalid --format %q: use text or json", f.format)
}

func renderDaemonStatus(w io.Writer, st daemon.Status, now time.Time) error {
	fmt.Fprintf(w, "daemon     pid %d, up %s, socket %s\n", st.PID, now.Sub(st.Since).Round(time.Second), st.Socket)
	fmt.Fprintf(w, "serving    namespace %s, state %s, containerd %s\n", st.Namespace, st.StateDir, st.Containerd)
	fmt.Fprintf(w, "upstreams  %s (from %s)%s\n", upstreamList(st.Upstreams), st.UpstreamsFrom, errSuffix(st.UpstreamsErr))
	r := st.Refresh
	latency := "no event yet"
	if r.MaxEventLatency > 0 {
		latency = fmt.Sprintf("event to answer %s (max %s)", ms(r.LastEventLatency), ms(r.MaxEventLatency))
	}
	fmt.Fprintf(w, "refresh    %d observes, last took %s, %s%s\n", r.Count, ms(r.LastDuration), latency, errSuffix(r.LastError))
	q := st.DNS
	fmt.Fprintf(w, "queries    %d: %d local, %d forwarded, %d failed forwards, %d refused\n", q.Queries, q.Local, q.Forwarded, q.ServFail, q.Refused)
	if st.EventsErr != "" {
		fmt.Fprintf(w, "events     not following: %s\n", st.EventsErr)
	}
	for _, n := range st.Networks {
		listen := "listening on " + n.Listen + " (udp, tcp)"
		if n.Listen == "" {
			listen = "NOT listening: " + n.Error
		}
		internal := ""
		if n.Internal {
			internal = ", internal (no forwarding)"
		}
		fmt.Fprintf(w, "\nnetwork %s  %s  %s%s\n", n.Name, n.Subnet, listen, internal)
		if err := renderNames(w, n); err != nil {
			return err
		}
	}
	renderRestarts(w, st.Restarts, now)
	return nil
}

// renderRestarts prints each container with a restart policy: its count,
// the last decision and the restart to come.
func renderRestarts(w io.Writer, rs []daemon.RestartStatus, now time.Time) {
	if len(rs) == 0 {
		return
	}
	fmt.Fprintln(w, "\nrestarts")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range rs {
		next := ""
		if !r.Next.IsZero() {
			next = ", next in " + r.Next.Sub(now).Round(time.Millisecond).String()
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d restarts\t%s%s\n", r.Container, r.Policy, r.Count, r.Last, next)
	}
	tw.Flush()
}

// renderNames prints one line per set of addresses with the names that
// answer it; each name also answers as <name>.<network>.
func renderNames(w io.Writer, n daemon.NetworkStatus) error {
	suffix := "." + n.Name
	var order []string
	byAddrs := map[string][]string{}
	for _, name := range n.Names {
		if strings.HasSuffix(name.Name, suffix) {
			continue
		}
		key := strings.Join(name.Addresses, " ")
		if _, ok := byAddrs[key]; !ok {
			order = append(order, key)
		}
		byAddrs[key] = append(byAddrs[key], name.Name)
	}
	if len(order) == 0 {
		fmt.Fprintln(w, "  (no running container)")
		return nil
	}
	sort.Strings(order)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  ADDRESSES\tNAMES (each also as NAME%s)\n", suffix)
	for _, key := range order {
		fmt.Fprintf(tw, "  %s\t%s\n", key, strings.Join(byAddrs[key], ", "))
	}
	return tw.Flush()
}

func upstreamList(ups []daemon.UpstreamStatus) string {
	if len(ups) == 0 {
		return "none (other names get SERVFAIL)"
	}
	var parts []string
	for _, u := range ups {
		s := u.Addr
		if u.Down {
			s += " (down)"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}

func errSuffix(s string) string {
	if s == "" {
		return ""
	}
	return "; error: " + s
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

// serveNames makes service names of a project with networks resolve: it
// ensures the daemon runs (STACK_DAEMON=off opts out). A daemon that cannot
// start does not fail the command (the containers run); it is a warning.
func (a *app) serveNames(ctx context.Context, desired compose.Desired) {
	if !daemonWanted(desired) {
		return
	}
	if restartsAny(desired) {
		// Remembered so that any later command brings a killed daemon back,
		// also for an installation without networks.
		_ = os.WriteFile(a.restartMarker(), nil, 0o600)
	}
	if err := a.ensureDaemon(ctx); err != nil {
		a.daemonNote("warning", "service names will not resolve: "+err.Error())
	}
}

// startDaemonBeside starts the daemon beside the work that follows (the
// plan's apply) when the project needs one and none answers yet: a host's
// first up then serves names while its containers start, and a container
// that resolves a peer as it starts finds it. wait joins it and prints its
// notes; serveNames afterwards finds the daemon running.
func (a *app) startDaemonBeside(ctx context.Context, desired compose.Desired) (wait func()) {
	sock := a.daemonSocket("")
	if !daemonWanted(desired) || daemonAnswers(sock) {
		return func() {}
	}
	a.notes.start()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.startDaemon(ctx, sock) // a failure is serveNames' to report
	}()
	return func() {
		<-done
		for _, n := range a.notes.stop() {
			a.daemonNote(n.level, n.msg)
		}
	}
}

// heldNotes keeps daemon notes while holding is on.
type heldNotes struct {
	mu      sync.Mutex
	holding bool
	held    []heldNote
}

type heldNote struct{ level, msg string }

func (h *heldNotes) start() {
	h.mu.Lock()
	h.holding = true
	h.mu.Unlock()
}

// hold keeps the note when holding is on, and reports whether it did.
func (h *heldNotes) hold(level, msg string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.holding {
		h.held = append(h.held, heldNote{level, msg})
	}
	return h.holding
}

// stop ends holding and returns the notes held.
func (h *heldNotes) stop() []heldNote {
	h.mu.Lock()
	defer h.mu.Unlock()
	held := h.held
	h.holding, h.held = false, nil
	return held
}

// daemonWanted: the project has names to serve (networks) or restart
// policies to enforce, and STACK_DAEMON=off does not opt out.
func daemonWanted(desired compose.Desired) bool {
	return (len(desired.Networks) > 0 || restartsAny(desired)) && os.Getenv("STACK_DAEMON") != "off"
}

// daemonAnswers reports whether something accepts connections on sock: a
// connect is the whole cost when the daemon is up.
func daemonAnswers(sock string) bool {
	conn, err := net.DialTimeout("unix", sock, 200*time.Millisecond)
	if err != nil {
		return false
	}
	conn.Close()
	return true
}

// restartMarker exists once a project with restart policies was brought up
// with this state directory.
func (a *app) restartMarker() string {
	return filepath.Join(a.opts.stateDir, "daemon-restarts")
}

// The daemon enforces restart policies through the engine's client.
var _ daemon.Restarter = (*ctrd.Client)(nil)

// restartsAny reports whether a container has a restart policy, which the
// daemon enforces even without networks to serve names on.
func restartsAny(desired compose.Desired) bool {
	for _, c := range desired.Containers {
		if c.Restart.Name != "" && c.Restart.Name != "no" {
			return true
		}
	}
	return false
}

// daemonNote tells the user about the daemon on stderr in the progress
// format: a JSON line under --progress json, nothing but warnings under
// quiet, a plain line otherwise.
func (a *app) daemonNote(level, msg string) {
	if a.notes.hold(level, msg) {
		return
	}
	switch a.opts.progress {
	case "json":
		_ = json.NewEncoder(a.stderr).Encode(map[string]string{"id": "Daemon", "level": level, "message": msg})
		return
	case "quiet":
		if level != "warning" {
			return
		}
	}
	if level == "warning" {
		msg = "WARN " + msg
	}
	fmt.Fprintln(a.stderr, msg)
}

// reviveDaemon brings a daemon that was killed back on any command that
// talks to containerd, as long as this installation has networks whose
// names it should serve. When the daemon is up, a connect on its socket is
// the whole cost.
// daemonNeeded: names to serve (network records) or restart policies to
// enforce.
func (a *app) daemonNeeded() bool {
	if records, _ := filepath.Glob(filepath.Join(a.opts.stateDir, "networks", "*.json")); len(records) > 0 {
		return true
	}
	_, err := os.Stat(a.restartMarker())
	return err == nil
}

func (a *app) reviveDaemon(ctx context.Context) {
	if a.isDaemon || os.Getenv("STACK_DAEMON") == "off" {
		return
	}
	if !a.daemonNeeded() {
		return
	}
	sock := a.daemonSocket("")
	if daemonAnswers(sock) {
		return
	}
	if err := a.startDaemon(ctx, sock); err != nil {
		a.daemonNote("warning", "service names will not resolve: "+err.Error())
	}
}
