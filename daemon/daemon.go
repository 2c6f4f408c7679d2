package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/stackdev/stack/engine"
	"github.com/stackdev/stack/netdns"
)

// Source is what the daemon needs from the engine: one observation of every
// project, and a stream of change notifications (engine/ctrd.Client has
// both). Events blocks until ctx is done or the stream breaks. A Source
// that is also a ContainerObserver has a container's event reach the
// answers without waiting for a full refresh.
type Source interface {
	Observe(ctx context.Context, project string) (engine.State, error)
	Events(ctx context.Context, fn func(engine.Event)) error
}

// Defaults.
const (
	DefaultSocket     = "/run/stack/stack.sock"
	DefaultResolvConf = "/etc/resolv.conf"
	DefaultDNSPort    = 53
	// DefaultDebounce is how long a burst of events is collected before the
	// one Observe it causes.
	DefaultDebounce = 10 * time.Millisecond
	// DefaultResync is how often the daemon observes without an event, a
	// safety net for anything missed (events tell containers' changes, the
	// Watch paths the networks'): an Observe of 100 containers costs tens
	// of milliseconds of CPU.
	DefaultResync = 10 * time.Second
	// watchEvery is how often the Watch paths and the state directory are
	// checked (one stat each).
	watchEvery = 100 * time.Millisecond
)

// ErrStateDirGone ends Run when the state directory the daemon serves has
// been removed: there is nothing left to serve.
var ErrStateDirGone = errors.New("the state directory was removed")

// Info identifies what a daemon serves; status shows it and the CLI checks
// it before trusting a daemon that answers on its socket.
type Info struct {
	Namespace  string `json:"namespace"`
	Containerd string `json:"containerd"`
	StateDir   string `json:"stateDir"`
	Socket     string `json:"socket"`
}

// Config tunes a Daemon. Source is required.
type Config struct {
	Source Source
	Info   Info
	// DNSPort is the port listened on at each gateway: 0 means 53, -1 any
	// free port (tests without root's port 53).
	DNSPort int
	TTL     time.Duration // of local answers; 0 means netdns.DefaultTTL
	// Upstreams, when set, replace the host's resolvers (STACK_DNS_UPSTREAMS).
	Upstreams []netip.AddrPort
	// ResolvConf is the host's resolver file, re-read when it changes.
	ResolvConf string
	Debounce   time.Duration
	Resync     time.Duration
	// StateDir, when set, is watched: Run returns ErrStateDirGone once it
	// no longer exists.
	StateDir string
	// Watch are paths (the state directory's networks directory) whose
	// change causes a refresh: networks come and go without an engine event.
	Watch  []string
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.DNSPort == 0 {
		c.DNSPort = DefaultDNSPort
	}
	if c.DNSPort < 0 {
		c.DNSPort = 0
	}
	if c.ResolvConf == "" {
		c.ResolvConf = DefaultResolvConf
	}
	if c.Debounce <= 0 {
		c.Debounce = DefaultDebounce
	}
	if c.Resync <= 0 {
		c.Resync = DefaultResync
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Daemon serves DNS for what the Source shows and answers status requests.
type Daemon struct {
	cfg   Config
	dns   *netdns.Server
	log   *slog.Logger
	since time.Time

	poke     chan struct{}       // an event arrived; capacity 1
	requests chan refreshRequest // explicit refreshes (the CLI after up)
	// refreshedFrom is when the last successful refresh started (owned by
	// the refresh loop): a request for the state since an earlier time is
	// answered by it.
	refreshedFrom time.Time
	// listeners is owned by the refresh loop.
	listeners map[string]listenState

	mu        sync.Mutex
	state     engine.State
	endpoints []netdns.Endpoint
	listening map[string]listenState // by network: a copy for status
	stats     RefreshStats
	pending   time.Time // earliest event not yet in the answers
	eventsErr string
	resolv    netdns.ResolvConf
	resolvErr string

	// observer is the Source as a ContainerObserver, nil if it is not one.
	observer  ContainerObserver
	patchPoke chan struct{} // a container waits for its own observation; capacity 1
	pmu       sync.Mutex
	// pendingIDs are the containers to observe alone, each with its
	// earliest event not yet in the answers (pendingPatch).
	pendingIDs map[string]pendingPatch
	// pub orders the table's publications: the refresh's and the patches'.
	pub     sync.Mutex
	answers answers // guarded by pub

	health   healthRunners  // owned by the refresh loop
	restarts restartRunners // owned by the refresh loop
	// restartStatus is the restarts' copy for status.
	restartStatus []RestartStatus
}

type listenState struct {
	want  netdns.Listener
	bound netip.AddrPort
	err   string
}

// New returns a Daemon that serves nothing until Run.
func New(cfg Config) *Daemon {
	cfg = cfg.withDefaults()
	observer, _ := cfg.Source.(ContainerObserver)
	return &Daemon{
		observer:   observer,
		patchPoke:  make(chan struct{}, 1),
		pendingIDs: map[string]pendingPatch{},
		cfg:        cfg,
		dns:        netdns.New(netdns.Config{TTL: cfg.TTL, Upstreams: cfg.Upstreams, Logger: cfg.Logger}),
		log:        cfg.Logger,
		since:      time.Now(),
		poke:       make(chan struct{}, 1),
		requests:   make(chan refreshRequest),
		listeners:  map[string]listenState{},
	}
}

// DNS is the daemon's DNS server (tests ask it what it answers).
func (d *Daemon) DNS() *netdns.Server { return d.dns }

// Run follows the engine, serves DNS and, when api is not nil, the status
// API on it, until ctx is done (it returns nil) or the state directory is
// removed. The first observation is made before the API answers, so a
// client that sees the socket answer sees the names too.
func (d *Daemon) Run(ctx context.Context, api net.Listener) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer d.dns.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	defer d.stopHealth()
	defer d.stopRestarts()
	wg.Go(func() { d.follow(ctx) })
	if d.observer != nil {
		wg.Go(func() { d.patchLoop(ctx) })
	}
	gone := make(chan struct{})
	wg.Go(func() { d.watch(ctx, watchEvery, gone) })
	if len(d.cfg.Upstreams) == 0 {
		wg.Go(func() { netdns.WatchResolvConf(ctx, d.cfg.ResolvConf, time.Second, d.setResolvConf) })
	}
	d.refresh(ctx)
	if api != nil {
		srv := d.apiServer()
		wg.Go(func() { _ = srv.Serve(api) })
		defer srv.Close()
	}
	return d.loop(ctx, gone)
}

// loop runs every refresh, one at a time: after a debounced burst of
// events, on request, and every Resync.
func (d *Daemon) loop(ctx context.Context, gone <-chan struct{}) error {
	resync := time.NewTicker(d.cfg.Resync)
	defer resync.Stop()
	retry := time.NewTicker(time.Second)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-d.poke:
			req, ok := d.debounce(ctx)
			if !ok {
				return nil
			}
			drain(d.poke)
			d.refresh(ctx)
			if req != nil {
				close(req.done) // this refresh started after the request came
			}
		case req := <-d.requests:
			if d.refreshedFrom.After(req.since) {
				close(req.done) // a refresh since then already shows it
				continue
			}
			drain(d.poke)
			d.refresh(ctx)
			close(req.done)
		case <-gone:
			return fmt.Errorf("%w: %s", ErrStateDirGone, d.cfg.StateDir)
		case <-resync.C:
			d.refresh(ctx)
		case <-retry.C:
			d.retryListeners()
		}
	}
}

// refreshRequest asks for answers that show the engine as it was at since
// or later; done is closed once they do.
type refreshRequest struct {
	since time.Time
	done  chan struct{}
}

// debounce waits out a burst of events. A refresh request cuts the wait
// short: the refresh that follows starts after it came, so it answers it.
// An event that needs the full refresh cuts a paced wait (refreshDelay)
// down to the debounce.
func (d *Daemon) debounce(ctx context.Context) (*refreshRequest, bool) {
	deadline := time.Now().Add(d.refreshDelay())
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, false
		case <-t.C:
			return nil, true
		case req := <-d.requests:
			return &req, true
		case <-d.poke:
			if sooner := time.Now().Add(d.refreshDelay()); sooner.Before(deadline) {
				deadline = sooner
				t.Reset(time.Until(deadline))
			}
		}
	}
}

// Pacing of the full refreshes during a burst of events that patches have
// already brought into the answers: the daemon observes everything at most
// a tenth of its time, and waits at most maxPacedWait.
const (
	refreshPace  = 9
	maxPacedWait = 250 * time.Millisecond
)

// refreshDelay is how long events gather before the full refresh they
// cause: the debounce, or, when each of them has reached the answers
// through its own container's observation (a patch), long enough after the
// last full refresh that the daemon spends at most a tenth of its time in
// full refreshes. A bulk up or down of 30 containers sends about a hundred
// events, and each full refresh asks every shim for its task (up to 37 of
// them in a 3 s down, each also costing containerd and the shims).
// The last refresh's end and length are those its stats recorded.
func (d *Daemon) refreshDelay() time.Duration {
	d.mu.Lock()
	unpatched := !d.pending.IsZero()
	last, took := d.stats.Last, d.stats.LastDuration
	d.mu.Unlock()
	if unpatched || d.observer == nil {
		return d.cfg.Debounce
	}
	paced := time.Until(last.Add(refreshPace * took))
	return min(max(d.cfg.Debounce, paced), maxPacedWait)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func drain(c chan struct{}) {
	select {
	case <-c:
	default:
	}
}

func (d *Daemon) stateDirGone() bool {
	if d.cfg.StateDir == "" {
		return false
	}
	_, err := os.Stat(d.cfg.StateDir)
	return errors.Is(err, os.ErrNotExist)
}

// Refresh observes now and returns once the answers show it (or ctx ends).
func (d *Daemon) Refresh(ctx context.Context) error {
	return d.RefreshSince(ctx, time.Now())
}

// RefreshSince returns once the answers show the engine as it was at since
// or later: at once when a refresh that started after since is done, else
// after a new one.
func (d *Daemon) RefreshSince(ctx context.Context, since time.Time) error {
	done := make(chan struct{})
	select {
	case d.requests <- refreshRequest{since: since, done: done}:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// follow subscribes to the engine's events, resubscribing after a failure
// (containerd restarted) with a bounded backoff and a full refresh, since
// events may have been missed meanwhile.
func (d *Daemon) follow(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := d.cfg.Source.Events(ctx, d.onEvent)
		if ctx.Err() != nil {
			return
		}
		d.log.Warn("daemon: event stream broke; resubscribing", "err", err, "in", backoff)
		d.mu.Lock()
		d.eventsErr = fmt.Sprint(err)
		d.mu.Unlock()
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, 5*time.Second)
		d.changed(time.Now())
	}
}

// onEvent notes that something changed. It never blocks the event stream.
// A container's event is also queued for that container's own observation,
// which then shows it in the answers (and measures its latency); the full
// refresh still follows, for everything else the daemon keeps.
func (d *Daemon) onEvent(ev engine.Event) {
	d.mu.Lock()
	d.eventsErr = ""
	d.mu.Unlock()
	at := ev.Time
	if at.IsZero() || at.After(time.Now()) {
		at = time.Now()
	}
	switch ev.Topic {
	case engine.TopicContainerCreate:
		// A container without a task yet changes no answer: the (paced)
		// full refresh shows it, and its task's start will be patched.
		d.pokeRefresh()
		return
	case engine.TopicTaskDelete:
		// Its exit took the container out of the answers already (a task
		// deleted unstarted was never in them): the (paced) full refresh
		// shows the rest. With the container's removal, which needs no
		// observation either (queuePatch), a down asks containerd about
		// each container once, not three times.
		d.pokeRefresh()
		return
	}
	if d.queuePatch(ev, at) {
		d.pokeRefresh()
		return
	}
	d.changed(at)
}

// changed asks the loop for a refresh; at is when the change happened, for
// the event-to-answer latency.
func (d *Daemon) changed(at time.Time) {
	d.mu.Lock()
	if d.pending.IsZero() || at.Before(d.pending) {
		d.pending = at
	}
	d.mu.Unlock()
	d.pokeRefresh()
}

// pokeRefresh asks the loop for a refresh, without an event to measure.
func (d *Daemon) pokeRefresh() {
	select {
	case d.poke <- struct{}{}:
	default:
	}
}

// refresh observes every project, swaps the new table in (with the patches
// observed since the refresh started) and brings the listeners and
// upstreams in line. A failed observation keeps serving the
// previous answers.
func (d *Daemon) refresh(ctx context.Context) {
	start := time.Now()
	d.mu.Lock()
	event := d.pending
	d.pending = time.Time{}
	d.mu.Unlock()
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	st, err := d.cfg.Source.Observe(octx, "")
	cancel()
	if err != nil {
		d.recordRefresh(start, time.Time{}, err)
		d.log.Warn("daemon: observe failed; still serving the previous answers", "err", err)
		return
	}
	d.publishBase(st, start)
	d.syncListeners(Listeners(st, uint16(d.cfg.DNSPort)))
	d.applyUpstreams()
	d.syncHealth(ctx, st)
	d.syncRestarts(ctx, st)
	d.refreshedFrom = start
	d.recordRefresh(start, event, nil)
}

func (d *Daemon) recordRefresh(start, event time.Time, err error) {
	now := time.Now()
	d.mu.Lock()
	defer d.mu.Unlock()
	s := &d.stats
	s.Count++
	s.Last, s.LastDuration = now, now.Sub(start)
	s.LastError = ""
	if err != nil {
		s.LastError = err.Error()
		return
	}
	if !event.IsZero() {
		s.LastEventLatency = now.Sub(event)
		s.MaxEventLatency = max(s.MaxEventLatency, s.LastEventLatency)
	}
}

// syncListeners stops the listeners of networks that are gone or moved and
// starts the missing ones. A listener that failed to start (the bridge is
// not up yet) is retried on the next refresh. Only the refresh loop calls
// it; status reads the copy it publishes.
func (d *Daemon) syncListeners(want []netdns.Listener) {
	wanted := map[string]netdns.Listener{}
	for _, l := range want {
		wanted[l.Network] = l
	}
	for network, ls := range d.listeners {
		if w, ok := wanted[network]; !ok || !sameListener(w, ls.want) {
			d.dns.RemoveListener(network)
			delete(d.listeners, network)
		}
	}
	for _, l := range want {
		if ls, ok := d.listeners[l.Network]; ok && ls.err == "" {
			continue
		}
		ls := listenState{want: l}
		bound, err := d.dns.AddListener(l)
		if err != nil {
			ls.err = err.Error()
			d.log.Warn("daemon: cannot listen for network", "network", l.Network, "err", err)
		}
		ls.bound = bound
		d.listeners[l.Network] = ls
	}
	d.mu.Lock()
	d.listening = maps.Clone(d.listeners)
	d.mu.Unlock()
}

// retryListeners tries again the listeners that failed to start (the
// address was still held by a listener of a removed network, or the bridge
// was not up), without a new observation.
func (d *Daemon) retryListeners() {
	failed := false
	for _, ls := range d.listeners {
		failed = failed || ls.err != ""
	}
	if !failed {
		return
	}
	d.mu.Lock()
	st := d.state
	d.mu.Unlock()
	d.syncListeners(Listeners(st, uint16(d.cfg.DNSPort)))
}

func sameListener(a, b netdns.Listener) bool {
	if a.Addr != b.Addr || a.Internal != b.Internal || len(a.Allow) != len(b.Allow) {
		return false
	}
	for i := range a.Allow {
		if a.Allow[i] != b.Allow[i] {
			return false
		}
	}
	return true
}

// setResolvConf takes a new reading of the host's resolv.conf. An
// unreadable file keeps the previous upstreams.
func (d *Daemon) setResolvConf(rc netdns.ResolvConf, err error) {
	d.mu.Lock()
	if err != nil {
		d.resolvErr = err.Error()
		d.mu.Unlock()
		d.log.Warn("daemon: host resolvers unreadable; keeping the previous ones", "err", err)
		return
	}
	d.resolv, d.resolvErr = rc, ""
	d.mu.Unlock()
	d.applyUpstreams()
}

// applyUpstreams forwards to the host's resolvers, never to a gateway of
// ours (that would loop), unless fixed upstreams were configured.
func (d *Daemon) applyUpstreams() {
	if len(d.cfg.Upstreams) > 0 {
		return
	}
	d.mu.Lock()
	ups := d.resolv.Upstreams(Gateways(d.state)...)
	d.mu.Unlock()
	d.dns.SetUpstreams(ups)
}

// watch polls the Watch paths and asks for a refresh when one changes; it
// closes gone and returns when the state directory has been removed.
func (d *Daemon) watch(ctx context.Context, every time.Duration, gone chan<- struct{}) {
	last := make([]pathStamp, len(d.cfg.Watch))
	for i, p := range d.cfg.Watch {
		last[i] = stampOf(p)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if d.stateDirGone() {
			close(gone)
			return
		}
		for i, p := range d.cfg.Watch {
			if now := stampOf(p); now != last[i] {
				last[i] = now
				d.changed(time.Now())
			}
		}
	}
}

type pathStamp struct {
	mtime time.Time
	size  int64
	ok    bool
}

func stampOf(path string) pathStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return pathStamp{}
	}
	return pathStamp{mtime: fi.ModTime(), size: fi.Size(), ok: true}
}
