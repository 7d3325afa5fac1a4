import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { ConcurrentRateLimiter, ConnectionClosed, ConnectionFailed, MemcachedRateLimiterBackend, MemcachedResultBackend, Message, ResultError, setResultBackend } from "troupe";
import { parseMemcachedUrl } from "../../worker/memcached/connection.js";
import { workerMetrics } from "../../worker/metrics/metrics.js";
import { REDIS_URL, cliPath, fixture, uniqueName } from "../support/env.js";
import { actors, startWorker, type Running } from "../support/middleware.js";
import { freePort } from "../support/redis.js";
import { until } from "../support/wait.js";
import { OwnMemcached } from "./own-memcached.js";

/** `troupe worker` run to its exit, with its output. */
function troupeWorker(env: Record<string, string>): Promise<{ code: number | null; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const args = [cliPath, "worker", fixture("process-actors"), "--broker", REDIS_URL, "--processes", "1"];
    execFile(process.execPath, args, { env: { ...process.env, TROUPE_REDIS_NAMESPACE: uniqueName("mcboot"), ...env }, timeout: 60_000 }, (err, _stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? null) : 0, stderr, ms: Date.now() - started }),
    );
  });
}

async function storeFailures(actorName: string): Promise<number> {
  const { values } = await workerMetrics().resultStoreFailures.get();
  return values.filter((v) => v.labels.actor_name === actorName).reduce((sum, v) => sum + v.value, 0);
}

describe("bad memcached URLs", () => {
  test("are refused when the backend is made, naming what is wrong, the password redacted; good ones keep the server order", () => {
    const bad: [string, RegExp][] = [
      ["memcached://", /no server given/],
      ["memcached://troupe:s3cret-pw@127.0.0.1:99999", /port 99999 is not from 1 to 65535/],
      ["memcached://troupe:s3cret-pw@host:11211,bad host", /"bad host" is not host\[:port\]/],
      ["memcached://troupe@127.0.0.1", /SASL needs both a user and a password/],
      ["memcached://troupe:%E0%A4%A@127.0.0.1", /not valid percent-encoding/],
      ["redis://troupe:s3cret-pw@127.0.0.1:6379", /the scheme must be memcached:\/\//],
    ];
    for (const [url, why] of bad) {
      for (const make of [() => new MemcachedResultBackend({ url }), () => new MemcachedRateLimiterBackend({ url })]) {
        assert.throws(make, (err: Error) => err.message.startsWith("invalid memcached URL") && why.test(err.message) && !err.message.includes("s3cret-pw"), url);
      }
    }
    assert.deepEqual(parseMemcachedUrl("memcached://u:p%40ss@b.example:11300,[::1],a.example/"), {
      servers: [
        { host: "b.example", port: 11300 },
        { host: "::1", port: 11211 },
        { host: "a.example", port: 11211 },
      ],
      username: "u",
      password: "p@ss",
    });
  });
});

describe("memcached down at boot", () => {
  test("connect() of either backend fails at once with ConnectionFailed naming the URL, password redacted", async () => {
    const port = await freePort();
    const url = `memcached://troupe:s3cret-pw@127.0.0.1:${port}`;
    for (const backend of [new MemcachedResultBackend({ url }), new MemcachedRateLimiterBackend({ url })]) {
      const started = Date.now();
      await assert.rejects(backend.connect(), (err: unknown) => {
        assert.ok(err instanceof ConnectionFailed, String(err));
        assert.match(err.message, new RegExp(`cannot connect to memcached at memcached://troupe:\\*\\*\\*@127\\.0\\.0\\.1:${port}`));
        assert.doesNotMatch(err.message, /s3cret-pw/);
        return true;
      });
      assert.ok(Date.now() - started < 3000, "within the connect timeout");
      await backend.close();
    }
  });

  for (const variable of ["TROUPE_RESULTS_URL", "TROUPE_RATE_LIMITER_URL"]) {
    test(`troupe worker with ${variable} on a memcached that is down exits 3 before consuming, naming the redacted URL`, async () => {
      const port = await freePort();
      const run = await troupeWorker({ [variable]: `memcached://troupe:s3cret-pw@127.0.0.1:${port}` });
      assert.equal(run.code, 3, run.stderr);
      assert.match(run.stderr, new RegExp(`memcached://troupe:\\*\\*\\*@127\\.0\\.0\\.1:${port}`));
      assert.doesNotMatch(run.stderr, /s3cret-pw/);
    });
  }
});

describe("memcached faults while a worker runs", () => {
  let server: OwnMemcached;
  let results: MemcachedResultBackend;
  let run: Running;

  before(async () => {
    server = await OwnMemcached.start();
    results = setResultBackend(new MemcachedResultBackend({ url: `memcached://${server.address}`, namespace: uniqueName("mcfault") })) as MemcachedResultBackend;
    await results.connect();
    run = await startWorker();
  });
  after(async () => {
    await run.stop();
    await results.close();
    await server.stop();
  });

  test("a result over memcached's 1 MB item limit is reported with its message id, counted, and the message still completes", async () => {
    const big = "x".repeat(1_100_000);
    const direct = new Message({ queueName: "default", actorName: "mw_identity", messageId: uniqueName("big") });
    await assert.rejects(results.storeResult(direct, big), (err: unknown) => err instanceof ResultError && err.message.includes(direct.messageId) && /too large/.test(err.message));

    const { identity } = await actors();
    const before = { processed: run.worker.stats.processed, failures: await storeFailures("mw_identity") };
    const sent = await identity.send(big);
    await until(() => run.worker.stats.processed === before.processed + 1, "the message processed");
    await until(async () => (await storeFailures("mw_identity")) === before.failures + 1, "the lost result counted");
    assert.equal(await results.getResult(sent).catch((err: Error) => err.name), "ResultMissing");
    assert.equal(run.worker.stats.failed, 0, "the message did not fail for its result");
  });

  test("memcached killed under load: every message still completes, the lost results are counted, limits fail with the URL, and the backends work again after its restart", async () => {
    const { identity } = await actors();
    const limits = new MemcachedRateLimiterBackend({ url: `memcached://${server.address}` });
    const limiter = new ConcurrentRateLimiter(uniqueName("mcfault-limit"), { backend: limits, limit: 2 });
    const before = { processed: run.worker.stats.processed, failures: await storeFailures("mw_identity") };
    const total = 400;
    const first = await identity.send("first");
    assert.equal(await first.getResult({ block: true, timeout: 10_000 }), "first");
    const sent = await Promise.all(Array.from({ length: total }, (_, i) => identity.send(i)));
    await until(() => run.worker.stats.processed >= before.processed + 1 + 50, "50 messages processed");
    await server.kill();

    const started = Date.now();
    await assert.rejects(
      limiter.acquire(async () => undefined),
      (err: unknown) => err instanceof ConnectionClosed && err.message.includes(`memcached at memcached://${server.address}`),
    );
    assert.ok(Date.now() - started < 3000, `the limiter failed within the request timeout (${Date.now() - started} ms)`);

    await until(() => run.worker.stats.processed === before.processed + 1 + total, `all ${total} messages processed`, { timeout: 60_000 });
    const failures = (await storeFailures("mw_identity")) - before.failures;
    assert.ok(failures > 0, "stores failed while memcached was down");
    assert.ok(failures < total, `the results before the kill were stored (${failures} of ${total} lost)`);
    assert.equal(run.worker.stats.failed, 0, "no message failed for its result");
    assert.equal(await run.broker.queueStats("default").then((s) => s.ready + s.inFlight + s.dead), 0, "nothing left in the queue, nothing dead");

    await server.restart();
    const again = await until(
      async () => {
        const message = await identity.send("after-restart");
        return message.getResult({ block: true, timeout: 2000 }).then(
          (value: unknown) => value === "after-restart",
          () => false,
        );
      },
      "a result stored and read once memcached is back",
      { timeout: 20_000, interval: 200 },
    );
    assert.equal(again, true);
    assert.equal(await limiter.acquire(async (acquired) => acquired), true, "limits work again");
    assert.ok(sent.length === total);
    await limits.close();
  });
});
