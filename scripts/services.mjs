/**
 * Make sure the services the tests talk to are there: reuse servers already listening on 127.0.0.1 (Redis :6379,
 * RabbitMQ :5672, memcached :11211), otherwise start them, installing the Debian package first when missing; and
 * make sure Debian's Chromium is installed for the browser tests (driven with the system executable, never a
 * downloaded browser).
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

export async function ensureMemcached() {
  // test/memcached/sasl.test.ts writes its own SASL user database with saslpasswd2.
  if (!which("saslpasswd2", ["/usr/sbin/saslpasswd2"])) aptInstall("sasl2-bin");
  if (await listening(11211)) return "reused";
  if (!which("memcached", ["/usr/bin/memcached"])) aptInstall("memcached");
  const bin = which("memcached", ["/usr/bin/memcached"]);
  // memcached refuses to run as root unless told which user to become.
  const user = process.getuid?.() === 0 ? ["-u", "nobody"] : [];
  execFileSync(bin, ["-d", ...user, "-l", "127.0.0.1", "-p", "11211", "-U", "0", "-m", "256"], { stdio: "inherit" });
  if (!(await waitForPort(11211, 20))) throw new Error("memcached did not start listening on 127.0.0.1:11211 within 20 s");
  return "started";
}

export const CHROMIUM_CANDIDATES = ["/usr/bin/chromium", "/usr/bin/chromium-browser"];

/** The system Chromium's path (Debian's `chromium` package), installed when missing. */
export function ensureChromium() {
  const found = which("chromium", CHROMIUM_CANDIDATES);
  if (found) return found;
  aptInstall("chromium");
  const installed = which("chromium", CHROMIUM_CANDIDATES);
  if (!installed) throw new Error("Chromium is not installed and apt-get did not provide /usr/bin/chromium");
  return installed;
}

export async function ensureServices() {
  const chromium = (async () => ensureChromium())();
  const results = await Promise.allSettled([ensureRedis(), ensureRabbitmq(), ensureMemcached(), chromium]);
  const [redis, rabbit, memcached, browser] = results;
  const problems = results.filter((r) => r.status === "rejected").map((r) => r.reason.message);
  if (problems.length) throw new Error(`test services are not available:\n  - ${problems.join("\n  - ")}`);
  process.env.TROUPE_CHROMIUM ??= browser.value;
  console.error(
    `[services] redis ${redis.value} on 127.0.0.1:6379, rabbitmq ${rabbit.value} on 127.0.0.1:5672, ` +
      `memcached ${memcached.value} on 127.0.0.1:11211, chromium at ${browser.value}`,
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  ensureServices().catch((err) => {
    console.error(`[services] ${err.message}`);
    process.exit(1);
  });
}
