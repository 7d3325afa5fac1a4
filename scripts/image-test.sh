#!/usr/bin/env bash
# Build the real Dockerfile with podman and smoke-test the image, without a registry or a Docker engine:
#   - the Dockerfile's base (node:20-bookworm-slim) is stood in for by a local image made with debootstrap plus this
#     machine's Node 20, tagged with the same name, so the Dockerfile is built unchanged (--pull=never);
#   - `troupe --help`, `troupe operator --help`, image config (non-root numeric user, tini as PID 1), and
#     `troupe demo` (worker threads, in-memory broker) with a read-only root filesystem;
#   - a user image built FROM ours with an actor module (the recipe in docs/shipping.md), run as a worker with a
#     read-only root filesystem, no capabilities and host networking against the loopback Redis; one enqueued message
#     must be processed and counted on the worker's /metrics, and SIGTERM must stop the worker cleanly (exit 0) well
#     before podman's kill timeout;
#   - `troupe operator` from the image against the project's fake API server: /readyz, /healthz, /metrics, SIGTERM.
# Needs root. Installs podman/buildah/runc/debootstrap with apt-get when missing. Cached between runs under
# $TROUPE_IMAGE_CACHE: the debootstrap rootfs and the base image (delete them to start cold).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${TROUPE_IMAGE_CACHE:-/var/tmp/troupe-image-cache}
base=docker.io/library/node:20-bookworm-slim
image=localhost/troupe:image-test
user_image=localhost/troupe-user-actors:image-test
suffix=$RANDOM$RANDOM
work=$(mktemp -d)
container=troupe-image-test-$suffix
started=$SECONDS

step() { printf '[image-test] %s (%ss)\n' "$*" "$((SECONDS - started))"; }
fail() { printf '[image-test] FAIL: %s\n' "$*" >&2; exit 1; }
cleanup() {
  podman rm -f -t 0 "$container" "$container-operator" >/dev/null 2>&1 || true
  [[ -z ${fake_pid:-} ]] || kill "$fake_pid" 2>/dev/null || true
  rm -rf "$work"
}
free_port() { node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })'; }
# serves URL with a 2xx status and a body matching the regular expression PATTERN (multi-line)
serves() { node -e "fetch('$1').then((r) => r.text().then((t) => process.exit(r.ok && /$2/m.test(t) ? 0 : 1)), () => process.exit(1))"; }
# wait_for DESCRIPTION COMMAND...: poll COMMAND for up to 30 s; on failure show the logs of container $watching
wait_for() {
  local what=$1 deadline=$((SECONDS + 30))
  shift
  until "$@"; do
    ((SECONDS < deadline)) || { podman logs "$watching" 2>&1 | tail -20; fail "$what"; }
    sleep 0.2
  done
}
# stop_cleanly CONTAINER: SIGTERM must reach node through tini and end it with exit code 0, long before podman's SIGKILL
stop_cleanly() {
  local began ms code
  began=$(date +%s%N)
  podman stop -t 20 "$1" >/dev/null
  ms=$((($(date +%s%N) - began) / 1000000))
  code=$(podman inspect "$1" --format '{{.State.ExitCode}}')
  [[ $code == 0 ]] || { podman logs "$1" 2>&1 | tail -20; fail "$1 exit code after SIGTERM: $code"; }
  ((ms < 15000)) || fail "SIGTERM took ${ms}ms: it did not reach $1"
  echo "$ms"
}
trap cleanup EXIT

mkdir -p "$cache"
missing=()
for tool in podman buildah runc debootstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
  step "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends \
    podman buildah runc crun fuse-overlayfs uidmap catatonit containernetworking-plugins debootstrap >/dev/null
fi

# This machine's kernel lacks CAP_SYS_RESOURCE and runs cgroups v1 hybrid: crun and podman's default rlimits fail,
# runc with lowered limits works. Host networking keeps containers on loopback (no CNI bridge).
export CONTAINERS_CONF=$cache/containers.conf
cat >"$CONTAINERS_CONF" <<'EOF'
[containers]
netns = "host"
default_ulimits = ["nofile=10000:10000", "nproc=10000:10000"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF

if ! podman image exists "$base"; then
  if [[ ! -f $cache/rootfs.tar ]]; then
    step "debootstrap bookworm (minbase)"
    rm -rf "$cache/rootfs"
    debootstrap --variant=minbase bookworm "$cache/rootfs" http://deb.debian.org/debian >"$cache/debootstrap.log"
    rm -rf "$cache/rootfs/var/cache/apt/archives/"*.deb
    tar -C "$cache/rootfs" -cf "$cache/rootfs.tar" .
    rm -rf "$cache/rootfs"
  fi
  step "building the stand-in for $base"
  ctx=$work/base
  mkdir -p "$ctx"
  ln "$cache/rootfs.tar" "$ctx/rootfs.tar" 2>/dev/null || cp "$cache/rootfs.tar" "$ctx/rootfs.tar"
  cp "$(command -v node)" "$ctx/node"
  cp -r "$(npm root -g)/npm" "$ctx/npm"
  # The sandbox's egress proxy re-signs TLS; npm inside the build must trust the same CAs as this machine.
  cp "$(npm config get cafile 2>/dev/null | grep -v '^null$' || echo /etc/ssl/certs/ca-certificates.crt)" "$ctx/host-ca.crt"
  cat >"$ctx/Dockerfile" <<'EOF'
FROM scratch
ADD rootfs.tar /
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY host-ca.crt /etc/ssl/certs/host-ca.crt
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/host-ca.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && groupadd --gid 1000 node && useradd --uid 1000 --gid node --create-home --shell /bin/bash node
CMD ["node"]
EOF
  podman build --pull=never --isolation chroot --network=host -q -t "$base" "$ctx" >/dev/null
fi

step "podman build (the real Dockerfile)"
build_started=$SECONDS
podman build --pull=never --isolation chroot --network=host -t "$image" "$root" >"$work/build.log" 2>&1 \
  || { tail -40 "$work/build.log"; fail "podman build"; }
build_seconds=$((SECONDS - build_started))
step "built $image in ${build_seconds}s, $(podman image inspect "$image" --format '{{.Size}}' | awk '{printf "%.0f MB", $1/1e6}')"

config=$(podman image inspect "$image" --format '{{.Config.User}} {{index .Config.Entrypoint 0}}')
[[ $config == "1000:1000 /usr/bin/tini" ]] || fail "image user/entrypoint: $config"
podman run --rm "$image" --help | grep -q '^Usage: troupe' || fail "troupe --help"
podman run --rm "$image" operator --help | grep -q '^Usage: troupe operator' || fail "troupe operator --help"
step "troupe --help and troupe operator --help work; user 1000:1000, tini is PID 1"
podman run --rm --read-only --tmpfs /tmp --cap-drop=ALL "$image" demo >"$work/demo.log" 2>&1 || { tail -20 "$work/demo.log"; fail "troupe demo"; }
step "troupe demo runs with a read-only root filesystem"

# The recipe from docs/shipping.md: actor modules in /app/actors import "troupe" from the image.
mkdir -p "$work/user/actors"
queue=image_test_$suffix
key=troupe:image-test:$suffix
cat >"$work/user/actors/package.json" <<'EOF'
{ "name": "image-test-actors", "private": true, "type": "module" }
EOF
cat >"$work/user/actors/tasks.js" <<EOF
import { actor } from "troupe";
import Redis from "ioredis";

export const record = actor("record", async (value) => {
  const redis = new Redis(process.env.TROUPE_BROKER_URL);
  await redis.set("$key", value);
  await redis.quit();
}, { queueName: "$queue" });
EOF
cat >"$work/user/Dockerfile" <<EOF
FROM $image
COPY actors /app/actors
CMD ["worker", "/app/actors/tasks.js"]
EOF
podman build --pull=never --isolation chroot --network=host -q -t "$user_image" "$work/user" >/dev/null

broker=redis://127.0.0.1:6379/0
watching=$container
metrics_port=$(free_port)
podman run -d --name "$container" --network=host --read-only --tmpfs /tmp --cap-drop=ALL \
  --security-opt no-new-privileges -e TROUPE_BROKER_URL="$broker" -e TROUPE_METRICS_PORT="$metrics_port" \
  "$user_image" worker --processes 1 --threads 1 /app/actors/tasks.js >/dev/null
podman run --rm --network=host "$image" enqueue record --queue "$queue" --args '["done"]' --broker "$broker" >/dev/null

processed() { node -e "
  const Redis = require('$root/node_modules/ioredis');
  const r = new Redis('$broker'); r.getdel('$key').then((v) => r.quit().then(() => process.exit(v === 'done' ? 0 : 1)));"; }
wait_for "the worker in the image did not process the message" processed
step "worker in the image processed a message from loopback Redis (read-only rootfs, no capabilities)"
wait_for "no dramatiq_messages_total for the actor on the worker's /metrics" \
  serves "http://127.0.0.1:$metrics_port/metrics" '^dramatiq_messages_total\{.*actor_name="record"'
step "the worker's /metrics counts it"
step "SIGTERM stopped the worker cleanly in $(stop_cleanly "$container")ms"

# The operator in the image, against the project's fake API server (test/fake-apiserver, compiled on this machine;
# other areas' type errors must not stop tsc's emit).
[[ -f $root/dist/test/fake-apiserver/server.js ]] || (cd "$root" && npx tsc -p tsconfig.json >/dev/null) || true
node --input-type=module -e "
  import { writeFileSync } from 'node:fs';
  import { FakeApiServer } from '$root/dist/test/fake-apiserver/server.js';
  const fake = await new FakeApiServer({ crdPaths: ['$root/crds'] }).start();
  writeFileSync('$work/kubeconfig', fake.kubeConfig().exportConfig());
  process.on('SIGTERM', () => fake.stop().then(() => process.exit(0)));" &
fake_pid=$!
wait_for "the fake API server did not start" test -s "$work/kubeconfig"
chmod 644 "$work/kubeconfig"
operator_port=$(free_port)
watching=$container-operator
podman run -d --name "$container-operator" --network=host --read-only --tmpfs /tmp --cap-drop=ALL \
  --security-opt no-new-privileges -v "$work/kubeconfig:/etc/troupe/kubeconfig:ro" "$image" \
  operator --kubeconfig /etc/troupe/kubeconfig --metrics-port "$operator_port" --leader-elect >/dev/null
wait_for "the operator in the image never became ready" serves "http://127.0.0.1:$operator_port/readyz" ok
serves "http://127.0.0.1:$operator_port/healthz" ok || fail "operator /healthz"
wait_for "the operator's /metrics lacks troupe_operator_reconcile_total" \
  serves "http://127.0.0.1:$operator_port/metrics" '^troupe_operator_reconcile_total'
step "operator in the image: /readyz, /healthz, /metrics (read-only rootfs, no capabilities, fake API server)"
step "SIGTERM stopped the operator cleanly in $(stop_cleanly "$container-operator")ms"
step "all image checks passed (build ${build_seconds}s)"
