#!/bin/sh
# Start or stop a private containerd for the integration tests: its own root,
# state, socket, runc root and opt dir under $CTD_DIR, so that it never
# collides with a containerd the host already runs.
set -eu
CTD_DIR=${CTD_DIR:-/tmp/stack-ctd}   # keep short: unix socket paths are limited to 108 bytes
SOCK="$CTD_DIR/containerd.sock"
case "${1:-start}" in
start)
  if [ -f "$CTD_DIR/containerd.pid" ] && kill -0 "$(cat "$CTD_DIR/containerd.pid")" 2>/dev/null; then
    echo "containerd already running on $SOCK"; exit 0
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
  echo $! > "$CTD_DIR/containerd.pid"
  i=0
  until ctr --address "$SOCK" version >/dev/null 2>&1; do
    i=$((i+1))
    if [ $i -gt 150 ] || ! kill -0 "$(cat "$CTD_DIR/containerd.pid")" 2>/dev/null; then
      echo "containerd failed to start:" >&2; tail -50 "$CTD_DIR/containerd.log" >&2; exit 1
    fi
    sleep 0.1
  done
  echo "containerd ready on $SOCK";;
stop)
  [ -f "$CTD_DIR/containerd.pid" ] || exit 0
  pid=$(cat "$CTD_DIR/containerd.pid"); kill "$pid" 2>/dev/null || true
  i=0; while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$CTD_DIR/containerd.pid";;
*) echo "usage: $0 start|stop" >&2; exit 2;;
esac
