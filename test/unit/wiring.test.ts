import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  MemoryBroker,
  MemoryRateLimiterBackend,
  MemoryResultBackend,
  RabbitmqBroker,
  RedisBroker,
  RedisRateLimiterBackend,
  RedisResultBackend,
  createBroker,
  createRateLimiterBackend,
  createResultBackend,
  parseServiceUrl,
  rateLimiterBackendFor,
  resultBackendFor,
  supportedSchemes,
} from "troupe";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { importGraph } from "../support/import-graph.js";
import { REDIS_URL, repoRoot } from "../support/env.js";

/** Code that decides by a URL's scheme: a regex anchored on one, a startsWith or a protocol comparison. */
const SCHEME_TEST = /\/\^\(?(?:rediss?|amqps?|memcached|memory)\b|startsWith\(\s*["'`](?:rediss?|amqps?|memcached|memory):|protocol\s*===?\s*["'`](?:rediss?|amqps?|memcached|memory):/;
/** The composition root, and the services' own URL parsers (hosts, credentials, parameters of their one scheme). */
const SCHEME_READERS = ["worker/setup.ts", "worker/brokers/rabbitmq/url.ts", "worker/memcached/connection.ts"];

test("only worker/setup.ts decides by a URL's scheme, and Broker imports no middleware", () => {
  assert.ok(SCHEME_TEST.test("if (!/^amqps?:/i.test(url)) return URL.canParse(url);"), "the detector sees a scheme regex");
  assert.ok(SCHEME_TEST.test('url.startsWith("redis://")') && SCHEME_TEST.test('u.protocol === "memcached:"'));
  const found = ["worker", "operator"]
    .flatMap((dir) => readdirSync(join(repoRoot, dir), { recursive: true }).map((f) => join(dir, String(f))))
    .filter((f) => f.endsWith(".ts") && !SCHEME_READERS.includes(f))
    .flatMap((f) =>
      readFileSync(join(repoRoot, f), "utf8")
        .split("\n")
        .map((line, i) => ({ line, where: `${f}:${i + 1}` }))
        .filter(({ line }) => !/^\s*(\*|\/\/)/.test(line) && SCHEME_TEST.test(line))
        .map(({ where, line }) => `${where}: ${line.trim()}`),
    );
  assert.deepEqual(found, [], "use parseServiceUrl / isMemoryBrokerUrl / isWellFormedBrokerUrl from worker/setup.ts");
  const fromBroker = importGraph(repoRoot, ["worker"]).filter((e) => e.from === "worker/broker.ts").map((e) => e.to);
  assert.ok(fromBroker.length > 0);
  assert.deepEqual(fromBroker.filter((to) => to.startsWith("worker/middleware/")), []);
});

test("one scheme parser: each role accepts its schemes and names the others in the error, password redacted", () => {
  assert.deepEqual(supportedSchemes("broker"), ["memory://", "redis://", "rediss://", "amqp://", "amqps://"]);
  assert.ok(!supportedSchemes("results").includes("amqp://"));
  assert.equal(parseServiceUrl("REDISS://:pw@host:6380/1", "results").family, "redis");
  const cases: [string, "broker" | "results" | "rate limiter"][] = [
    ["amqp://guest:S3cret@127.0.0.1:5672/", "results"],
    ["amqp://guest:S3cret@127.0.0.1:5672/", "rate limiter"],
    ["kafka://u:S3cret@host", "broker"],
    ["127.0.0.1:6379", "broker"],
    ["constructor://x", "broker"],
  ];
  for (const [url, role] of cases) {
    assert.throws(
      () => parseServiceUrl(url, role),
      (err: Error) => err.message.startsWith(`unsupported ${role} URL`) && !err.message.includes("S3cret") && err.message.includes(supportedSchemes(role).join(", ")),
      url,
    );
  }
});

test("createBroker and the backend factories build what the URL names, with the default middleware", async () => {
  const memory = createBroker("memory://");
  assert.ok(memory instanceof MemoryBroker);
  assert.deepEqual(
    memory.middleware.map((m) => m.constructor.name),
    ["Prometheus", "AgeLimit", "TimeLimit", "ShutdownNotifications", "Callbacks", "Pipelines", "Retries", "Results", "GroupCallbacks"],
  );
  assert.equal(createBroker("memory://", { middleware: [] }).middleware.length, 0);
  const redis = createBroker(`${REDIS_URL}`);
  const rabbit = createBroker("amqp://guest:guest@127.0.0.1:5672/");
  assert.ok(redis instanceof RedisBroker);
  assert.ok(rabbit instanceof RabbitmqBroker);
  const backends = [createResultBackend("memory://"), createResultBackend(REDIS_URL, { namespace: "ns" }), createRateLimiterBackend("memory://"), createRateLimiterBackend(REDIS_URL)];
  assert.ok(backends[0] instanceof MemoryResultBackend);
  assert.ok(backends[1] instanceof RedisResultBackend && backends[1].namespace === "ns");
  assert.ok(backends[2] instanceof MemoryRateLimiterBackend);
  assert.ok(backends[3] instanceof RedisRateLimiterBackend);
  // A broker's own service: results beside the queues on Redis and memory, none on RabbitMQ.
  assert.ok(resultBackendFor(redis) instanceof RedisResultBackend);
  assert.ok(resultBackendFor(memory) instanceof MemoryResultBackend);
  assert.equal(resultBackendFor(rabbit), undefined);
  assert.ok(rateLimiterBackendFor(redis) instanceof RedisRateLimiterBackend);
  assert.equal(rateLimiterBackendFor(memory), undefined);
  // Nothing above connected; closing releases the lazily connecting clients.
  await Promise.all([redis.close(), rabbit.close(), ...backends.map((b) => b.close?.())]);
});

test("defaults follow the environment: TROUPE_RESULTS_URL and TROUPE_RATE_LIMITER_URL, else the broker's own service", () => {
  const script = `
    import { getResultBackend, getRateLimiterBackend, setBroker, createBroker } from "troupe";
    const out = {};
    out.limiterBeforeBroker = getRateLimiterBackend().constructor.name;
    setBroker(createBroker());
    out.results = getResultBackend().constructor.name;
    console.log(JSON.stringify(out));
    process.exit(0);
  `;
  const run = (env: Record<string, string>) => {
    const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], { cwd: repoRoot, encoding: "utf8", env: { ...process.env, TROUPE_BROKER_URL: "", TROUPE_RESULTS_URL: "", TROUPE_RATE_LIMITER_URL: "", ...env } });
    assert.equal(child.status, 0, child.stderr);
    return JSON.parse(child.stdout) as Record<string, string>;
  };
  assert.deepEqual(run({}), { limiterBeforeBroker: "MemoryRateLimiterBackend", results: "MemoryResultBackend" });
  assert.deepEqual(run({ TROUPE_BROKER_URL: REDIS_URL }), { limiterBeforeBroker: "MemoryRateLimiterBackend", results: "RedisResultBackend" });
  assert.deepEqual(run({ TROUPE_RESULTS_URL: REDIS_URL, TROUPE_RATE_LIMITER_URL: REDIS_URL }), { limiterBeforeBroker: "RedisRateLimiterBackend", results: "RedisResultBackend" });
  const bad = spawnSync(process.execPath, ["--input-type=module", "-e", script], { cwd: repoRoot, encoding: "utf8", env: { ...process.env, TROUPE_BROKER_URL: "amqp://guest:guest@127.0.0.1:5672/", TROUPE_RESULTS_URL: "", TROUPE_RATE_LIMITER_URL: "" } });
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /no results backend for broker amqp:\/\/guest:\*\*\*@127\.0\.0\.1:5672\/: set TROUPE_RESULTS_URL/);
});
