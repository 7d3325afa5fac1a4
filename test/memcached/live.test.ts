import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { MemcachedRateLimiterBackend, MemcachedResultBackend, Message, ResultFailure, WindowRateLimiter, createResultBackend, encodeJson, setResultBackend } from "troupe";
import { serverIndex } from "../../worker/memcached/hashing.js";
import { repoRoot, uniqueName } from "../support/env.js";
import { workerForSuite } from "../support/middleware.js";
import { OwnMemcached } from "./own-memcached.js";
import { RawMemcached } from "./raw.js";

const MEMCACHED_URL = "memcached://127.0.0.1:11211";

describe("a Troupe worker storing results on memcached (127.0.0.1:11211)", () => {
  const namespace = uniqueName("mclive");
  const results = setResultBackend(createResultBackend(MEMCACHED_URL, { namespace })) as MemcachedResultBackend;
  const suite = workerForSuite();
  let raw: RawMemcached;
  const keys: string[] = [];

  before(async () => {
    raw = await RawMemcached.open();
  });
  after(async () => {
    await raw.delete(...keys);
    raw.close();
    await results.close();
  });

  test("results and failures round-trip, under the key and bytes a Dramatiq reader computes on its own", async () => {
    const { a } = suite;
    const sent = await a.identity.send({ text: "héllo", n: [1, 2] });
    assert.deepEqual(await sent.getResult({ block: true, timeout: 10_000 }), { text: "héllo", n: [1, 2] });
    // Dramatiq's rule, computed here by hand: md5("<namespace>:<queue>:<actor>:<message id>"), flags 0, its JSON.
    const key = createHash("md5").update(`${namespace}:${sent.queueName}:${sent.actorName}:${sent.messageId}`).digest("hex");
    keys.push(key);
    const item = await raw.get(key);
    assert.equal(item?.flags, 0);
    assert.equal(item?.value.toString("utf8"), encodeJson({ text: "héllo", n: [1, 2] }));
    assert.equal(item?.value.toString("latin1"), '{"text":"h\\u00e9llo","n":[1,2]}');

    const failed = await a.alwaysFails.send(uniqueName("fail"));
    keys.push(results.buildMessageKey(failed));
    await assert.rejects(failed.getResult({ block: true, timeout: 20_000 }), (err: unknown) => err instanceof ResultFailure && err.origExcType === "RangeError");
  });

  test("a result a Python worker stored (set <md5> 0 600) is what getResult returns", async () => {
    const message = new Message({ queueName: "default", actorName: "py_actor", messageId: uniqueName("py") });
    const key = results.buildMessageKey(message);
    keys.push(key);
    assert.equal(await raw.set(key, '{"from":"python","ok":true}', 0, 600), "STORED");
    assert.deepEqual(await message.getResult(), { from: "python", ok: true });
  });

  test("a blocking read polls with backoff: measured lag between the store and the reader", async () => {
    const writer = new MemcachedResultBackend({ url: MEMCACHED_URL, namespace });
    const lags: number[] = [];
    try {
      for (let i = 0; i < 30; i++) {
        const message = new Message({ queueName: "default", actorName: "lag", messageId: uniqueName("lag") });
        keys.push(results.buildMessageKey(message));
        const reading = results.getResult(message, { block: true, timeout: 10_000 }).then(() => performance.now());
        // The store lands at a varying point of the reader's backoff (0–150 ms after the read began).
        await new Promise((resolve) => setTimeout(resolve, (i * 37) % 150));
        await writer.storeResult(message, i);
        const stored = performance.now();
        lags.push((await reading) - stored);
      }
    } finally {
      await writer.close();
    }
    lags.sort((x, y) => x - y);
    const at = (q: number) => lags[Math.min(lags.length - 1, Math.floor(q * lags.length))]!.toFixed(1);
    console.log(`memcached blocking getResult lag after the store (30 reads): p50 ${at(0.5)} ms, p90 ${at(0.9)} ms, max ${at(1)} ms`);
    // The longest pause is 50 ms; a loaded machine adds its own delays, hence the margin.
    assert.ok(lags[Math.floor(lags.length / 2)]! < 60, `median lag ${at(0.5)} ms`);
  });
});

describe("memcached rate limits shared between processes", () => {
  test("a ConcurrentRateLimiter(limit 3) is never exceeded by 2 processes × 4 concurrent holders", async () => {
    const key = uniqueName("mcconc");
    const script = join(repoRoot, "dist", "test", "memcached", "limit-process.js");
    const children = [0, 1].map(() => spawn(process.execPath, [script, MEMCACHED_URL, key, "3", "15"], { stdio: ["ignore", "pipe", "inherit"] }));
    const outputs = await Promise.all(
      children.map(async (child) => {
        let out = "";
        child.stdout!.on("data", (chunk) => (out += chunk));
        const [code] = await once(child, "exit");
        assert.equal(code, 0);
        return JSON.parse(out) as { most: number; acquired: number };
      }),
    );
    const raw = await RawMemcached.open();
    try {
      assert.equal(outputs.reduce((n, o) => n + o.acquired, 0), 2 * 4 * 15, "every round acquired");
      assert.ok(Math.max(...outputs.map((o) => o.most)) <= 3, `most holders seen: ${outputs.map((o) => o.most)}`);
      assert.equal((await raw.get(key))?.value.toString().trim(), "0", "every holder released (and no failed acquire left a count)");
    } finally {
      await raw.delete(key, `${key}:holders`);
      raw.close();
    }
  });
});

describe("several memcached servers", () => {
  let servers: OwnMemcached[];

  before(async () => {
    servers = await Promise.all([OwnMemcached.start(), OwnMemcached.start()]);
  });
  after(() => Promise.all(servers.map((s) => s.stop())));

  test("each key lives on the server pylibmc would pick (URL order), and limits span the servers", async () => {
    const url = `memcached://${servers.map((s) => s.address).join(",")}`;
    const backend = new MemcachedResultBackend({ url, namespace: uniqueName("mcmulti") });
    const raws = await Promise.all(servers.map((s) => RawMemcached.open(s.port)));
    try {
      await backend.connect();
      const placed = [0, 0];
      for (let i = 0; i < 40; i++) {
        const message = new Message({ queueName: "default", actorName: "multi", messageId: `m-${i}` });
        await backend.storeResult(message, i);
        const key = backend.buildMessageKey(message);
        const home = serverIndex(key, 2);
        placed[home]!++;
        assert.equal((await raws[home]!.get(key))?.value.toString(), String(i), `key ${key} on server ${home}`);
        assert.equal(await raws[1 - home]!.get(key), undefined, `key ${key} only there`);
        assert.equal(await backend.getResult(message), i);
      }
      assert.ok(placed[0]! > 0 && placed[1]! > 0, `both servers used: ${placed}`);

      const limits = new MemcachedRateLimiterBackend({ url });
      const window = new WindowRateLimiter(uniqueName("mcmultiwin"), { backend: limits, limit: 5, window: 3 });
      const outcomes = [];
      for (let i = 0; i < 7; i++) outcomes.push(await window.tryAcquire());
      assert.equal(outcomes.filter(Boolean).length, 5, "the window's second keys, spread over both servers, are summed");
      await limits.close();
    } finally {
      await backend.close();
      for (const r of raws) r.close();
    }
  });
});
