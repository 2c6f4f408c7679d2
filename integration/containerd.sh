#!/bin/sh
# Start or stop a private containerd for the integration tests: its own root,
# state, socket and opt dir under $CTD_DIR, so that it never collides with a
# containerd the host already runs.
#
#   CTD_DIR=/tmp/sctd.XXXX sh integration/containerd.sh start   # waits until it answers
#   CTD_DIR=/tmp/sctd.XXXX sh integration/containerd.sh stop    # kills what tests left running, stops it
#
# Keep CTD_DIR short: unix socket paths are limited to 108 bytes.
set -eu
CTD_DIR=${CTD_DIR:-/tmp/stack-ctd}
SOCK="$CTD_DIR/containerd.sock"
PIDFILE="$CTD_DIR/containerd.pid"

running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

start() {
  if running; then echo "containerd already running on $SOCK"; return 0; fi
  for bin in containerd ctr runc; do
    command -v "$bin" >/dev/null 2>&1 || {
      echo "$bin not found: apt-get install containerd runc (make deps does it)" >&2; exit 1; }
  done
  if [ ${#SOCK} -gt 100 ]; then
    echo "CTD_DIR=$CTD_DIR is too long for a unix socket path; use a short one such as /tmp/sctd.XXXX" >&2; exit 1
  fi
  mkdir -p "$CTD_DIR"
  cat > "$CTD_DIR/config.toml" <<CFG
version = 2
root = "$CTD_DIR/root"
state = "$CTD_DIR/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$SOCK"

[ttrpc]
  address = "$SOCK.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$CTD_DIR/opt"
CFG
  setsid containerd --config "$CTD_DIR/config.toml" --log-level warn \
      >"$CTD_DIR/containerd.log" 2>&1 < /dev/null &
  echo $! > "$PIDFILE"
  i=0
  until ctr --address "$SOCK" version >/dev/null 2>&1; do   # wait for gRPC, not just the socket file
    i=$((i+1))
    if [ $i -gt 150 ] || ! running; then
      echo "containerd failed to start:" >&2; tail -50 "$CTD_DIR/containerd.log" >&2; exit 1
    fi
    sleep 0.1
  done
  echo "containerd ready on $SOCK"
}

# reap deletes every task the tests left behind, so that no shim, container
# process or rootfs mount outlives the daemon.
reap() {
  for ns in $(ctr --address "$SOCK" namespaces ls -q 2>/dev/null); do
    for task in $(ctr --address "$SOCK" -n "$ns" tasks ls -q 2>/dev/null); do
      echo "containerd.sh: $ns/$task was still running; killing it" >&2
      ctr --address "$SOCK" -n "$ns" tasks delete -f "$task" >/dev/null 2>&1 || true
    done
  done
}

stop() {
  running || { rm -f "$PIDFILE"; return 0; }
  reap
  pid=$(cat "$PIDFILE"); kill "$pid" 2>/dev/null || true
  i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
  # Mounts a crashed shim may have left under the root or state directories, deepest first.
  awk -v d="$CTD_DIR/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}

case "${1:-start}" in
start) start;;
stop) stop;;
*) echo "usage: $0 start|stop" >&2; exit 2;;
esac
