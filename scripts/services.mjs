/**
 * Make sure the brokers the tests talk to are listening on loopback: reuse servers already on 127.0.0.1:6379 and
 * :5672, otherwise start them, installing Debian's redis-server / rabbitmq-server first when missing.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import net from "node:net";

function listening(port, host = "127.0.0.1") {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
    socket.setTimeout(1000, () => {
      socket.destroy();
      resolve(false);
    });
  });
}

async function waitForPort(port, seconds) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (await listening(port)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

let aptUpdated = false;
function aptInstall(pkg) {
  console.error(`[services] installing ${pkg} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  if (!aptUpdated) {
    spawnSync("apt-get", ["update", "-qq"], { stdio: "inherit", env });
    aptUpdated = true;
  }
  const r = spawnSync("apt-get", ["install", "-y", "-qq", "--no-install-recommends", pkg], { stdio: "inherit", env });
  if (r.status !== 0) throw new Error(`could not install ${pkg} (apt-get exited ${r.status}); install it by hand or start the server on 127.0.0.1`);
}

function which(bin, fallbacks = []) {
  for (const p of fallbacks) if (existsSync(p)) return p;
  const r = spawnSync("sh", ["-c", `command -v ${bin}`], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

export async function ensureRedis() {
  if (await listening(6379)) return "reused";
  if (!which("redis-server", ["/usr/bin/redis-server"])) aptInstall("redis-server");
  const bin = which("redis-server", ["/usr/bin/redis-server"]);
  execFileSync(bin, ["--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no"], { stdio: "inherit" });
  if (!(await waitForPort(6379, 20))) throw new Error("Redis did not start listening on 127.0.0.1:6379 within 20 s");
  return "started";
}

export async function ensureRabbitmq() {
  if (await listening(5672)) return "reused";
  if (!which("rabbitmq-server", ["/usr/sbin/rabbitmq-server"])) aptInstall("rabbitmq-server");
  const bin = which("rabbitmq-server", ["/usr/sbin/rabbitmq-server"]);
  execFileSync(bin, ["-detached"], { stdio: "inherit" });
  if (!(await waitForPort(5672, 90))) throw new Error("RabbitMQ did not start listening on 127.0.0.1:5672 within 90 s");
  return "started";
}

export async function ensureServices() {
  const results = await Promise.allSettled([ensureRedis(), ensureRabbitmq()]);
  const [redis, rabbit] = results;
  const problems = results.filter((r) => r.status === "rejected").map((r) => r.reason.message);
  if (problems.length) throw new Error(`test services are not available:\n  - ${problems.join("\n  - ")}`);
  console.error(`[services] redis ${redis.value} on 127.0.0.1:6379, rabbitmq ${rabbit.value} on 127.0.0.1:5672`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  ensureServices().catch((err) => {
    console.error(`[services] ${err.message}`);
    process.exit(1);
  });
}
