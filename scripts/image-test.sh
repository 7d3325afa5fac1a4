#!/usr/bin/env bash
# Build the real Dockerfile with podman and smoke-test the image, without a registry or a Docker engine:
#   - the Dockerfile's base (node:20-bookworm-slim) is stood in for by a local image made with debootstrap plus this
#     machine's Node 20, tagged with the same name, so the Dockerfile is built unchanged (--pull=never);
#   - `troupe --help`, `troupe operator --help`, image config (non-root numeric user, tini as PID 1), and
#     `troupe demo` (worker threads, in-memory broker) with a read-only root filesystem;
#   - a user image built FROM ours with an actor module (the recipe in docs/shipping.md), run as a worker with a
#     read-only root filesystem, no capabilities and host networking against the loopback Redis; one enqueued message
#     must be processed and counted on the worker's /metrics, and SIGTERM must stop the worker cleanly (exit 0) well
#     before podman's kill timeout.
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
  podman rm -f -t 0 "$container" >/dev/null 2>&1 || true
  rm -rf "$work"
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
metrics_port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
podman run -d --name "$container" --network=host --read-only --tmpfs /tmp --cap-drop=ALL \
  --security-opt no-new-privileges -e TROUPE_BROKER_URL="$broker" -e TROUPE_METRICS_PORT="$metrics_port" \
  "$user_image" worker --processes 1 --threads 1 /app/actors/tasks.js >/dev/null
podman run --rm --network=host "$image" enqueue record --queue "$queue" --args '["done"]' --broker "$broker" >/dev/null

redis_get() { node -e "
  const Redis = require('$root/node_modules/ioredis');
  const r = new Redis('$broker'); r.getdel('$key').then((v) => { console.log(v ?? ''); return r.quit(); });"; }
deadline=$((SECONDS + 30))
until [[ $(redis_get) == done ]]; do
  ((SECONDS < deadline)) || { podman logs "$container" | tail -20; fail "the worker in the image did not process the message"; }
  sleep 0.2
done
step "worker in the image processed a message from loopback Redis (read-only rootfs, no capabilities)"
counted() { node -e "fetch('http://127.0.0.1:$metrics_port/metrics').then((r) => r.text()).then(
  (t) => process.exit(/^dramatiq_messages_total\{.*actor_name=\"record\"/m.test(t) ? 0 : 1), () => process.exit(1))"; }
until counted; do
  ((SECONDS < deadline)) || fail "no dramatiq_messages_total for the actor on the worker's /metrics"
  sleep 0.2
done
step "the worker's /metrics counts it"

stop_started=$(date +%s%N)
podman stop -t 20 "$container" >/dev/null
stop_ms=$((($(date +%s%N) - stop_started) / 1000000))
code=$(podman inspect "$container" --format '{{.State.ExitCode}}')
[[ $code == 0 ]] || { podman logs "$container" | tail -20; fail "worker exit code after SIGTERM: $code"; }
((stop_ms < 15000)) || fail "SIGTERM took ${stop_ms}ms: it did not reach the worker"
step "SIGTERM stopped the worker cleanly in ${stop_ms}ms"
step "all image checks passed (build ${build_seconds}s)"
