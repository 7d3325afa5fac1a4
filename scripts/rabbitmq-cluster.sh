#!/usr/bin/env bash
# A three-node RabbitMQ cluster on loopback for tests and local trials, from Debian's rabbitmq-server package:
# three Erlang VMs with their own node names (troupe-a@localhost, …), AMQP and distribution ports, data and log
# directories under one folder, a shared Erlang cookie of their own, no plugins. The shared server on 5672
# (rabbit@<host>) and its cookie are never touched: the nodes and rabbitmqctl run with HOME set to the folder.
#
#   scripts/rabbitmq-cluster.sh start     start the nodes, join b and c to a; prints the cluster URL
#   scripts/rabbitmq-cluster.sh stop      stop every node and delete the folder
#   scripts/rabbitmq-cluster.sh kill N    SIGKILL node N (a, b or c): a node crash
#   scripts/rabbitmq-cluster.sh restart N start node N again on its data (it rejoins the cluster)
#   scripts/rabbitmq-cluster.sh url       the cluster URL, amqp://guest:guest@127.0.0.1:PA,127.0.0.1:PB,127.0.0.1:PC/
#   scripts/rabbitmq-cluster.sh ctl N ARGS...  rabbitmqctl against node N
#
# TROUPE_CLUSTER_DIR (default /tmp/troupe-rabbitmq-cluster) is the folder; TROUPE_CLUSTER_PORT (default 5691) the
# first AMQP port: the nodes listen on PORT, PORT+1, PORT+2 and use PORT+20000.. for Erlang distribution.
set -euo pipefail

DIR="${TROUPE_CLUSTER_DIR:-/tmp/troupe-rabbitmq-cluster}"
BASE_PORT="${TROUPE_CLUSTER_PORT:-5691}"
NODES=(a b c)
BIN=/usr/lib/rabbitmq/bin
# The /usr/sbin wrappers switch to the rabbitmq user and its HOME (the shared server's cookie); the real scripts do not.
[ -x "$BIN/rabbitmq-server" ] || BIN="$(dirname "$(command -v rabbitmq-server)")"

index() { case "$1" in a) echo 0 ;; b) echo 1 ;; c) echo 2 ;; *) echo "unknown node $1 (a, b or c)" >&2; exit 2 ;; esac; }
port() { echo $((BASE_PORT + $(index "$1"))); }
nodename() { echo "troupe-$1@localhost"; }

node_env() {
  local n="$1"
  export HOME="$DIR"
  export RABBITMQ_NODENAME; RABBITMQ_NODENAME="$(nodename "$n")"
  export RABBITMQ_NODE_PORT; RABBITMQ_NODE_PORT="$(port "$n")"
  export RABBITMQ_DIST_PORT=$((RABBITMQ_NODE_PORT + 20000))
  export RABBITMQ_CONFIG_FILE="$DIR/$n/rabbitmq.conf"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins"
  export RABBITMQ_MNESIA_BASE="$DIR/$n/mnesia"
  export RABBITMQ_LOG_BASE="$DIR/$n/log"
  export RABBITMQ_PID_FILE="$DIR/$n/pid"
}

ctl() {
  [ -n "${TROUPE_CLUSTER_TRACE:-}" ] && echo "$(date +%T.%N | cut -c1-12) ctl $*" >&2
  local n="$1"
  shift
  (node_env "$n" && "$BIN/rabbitmqctl" -q -n "$(nodename "$n")" "$@")
}

start_node() {
  local n="$1"
  (
    node_env "$n"
    mkdir -p "$DIR/$n/log"
    printf 'listeners.tcp.local = 127.0.0.1:%s\n' "$RABBITMQ_NODE_PORT" >"$DIR/$n/rabbitmq.conf"
    setsid "$BIN/rabbitmq-server" >"$DIR/$n/log/stdout" 2>&1 </dev/null &
  )
}

await_node() {
  ctl "$1" wait --timeout 60 "$DIR/$1/pid" >/dev/null
}

url() {
  echo "amqp://guest:guest@127.0.0.1:$(port a),127.0.0.1:$(port b),127.0.0.1:$(port c)/"
}

case "${1:-}" in
  start)
    started=$(date +%s%N)
    if [ -e "$DIR" ]; then echo "$DIR exists: run '$0 stop' first" >&2; exit 1; fi
    mkdir -p "$DIR"
    # A cookie of the cluster's own, found by the nodes and by rabbitmqctl through HOME.
    head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' >"$DIR/.erlang.cookie"
    chmod 400 "$DIR/.erlang.cookie"
    echo "[]." >"$DIR/enabled_plugins"
    for n in "${NODES[@]}"; do start_node "$n"; done
    for n in "${NODES[@]}"; do await_node "$n"; done
    for n in b c; do
      ctl "$n" stop_app
      ctl "$n" join_cluster "$(nodename a)"
      ctl "$n" start_app
    done
    ctl a await_online_nodes 3 >/dev/null
    elapsed=$((($(date +%s%N) - started) / 1000000))
    echo "cluster of 3 nodes up in $((elapsed / 1000)).$(printf '%03d' $((elapsed % 1000))) s: $(url)" >&2
    url
    ;;
  stop)
    for n in "${NODES[@]}"; do
      [ -f "$DIR/$n/pid" ] && kill -9 "$(cat "$DIR/$n/pid")" 2>/dev/null || true
    done
    rm -rf "$DIR"
    ;;
  kill)
    kill -9 "$(cat "$DIR/${2:?node}/pid")"
    ;;
  restart)
    start_node "${2:?node}"
    await_node "$2"
    ;;
  url) url ;;
  ctl)
    n="${2:?node}"
    shift 2
    ctl "$n" "$@"
    ;;
  *)
    sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
