import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import {
  BucketRateLimiter,
  ConcurrentRateLimiter,
  GroupCallbacks,
  MemcachedRateLimiterBackend,
  MemcachedResultBackend,
  MemoryBroker,
  Message,
  ResultError,
  ResultFailure,
  WindowRateLimiter,
  Barrier,
  decodeJson,
  group,
  type MessageData,
} from "troupe";
import { oneAtATime, serverIndex } from "../../worker/memcached/hashing.js";
import { goldenMemcachedDir, repoRoot, uniqueName } from "../support/env.js";
import { OwnMemcached } from "./own-memcached.js";
import { RawMemcached, type RawItem } from "./raw.js";

const MEMCACHED_URL = "memcached://127.0.0.1:11211";

function golden<T>(name: string): T {
  return JSON.parse(readFileSync(join(goldenMemcachedDir, name), "utf8")) as T;
}

interface GoldenItem {
  key: string;
  flags?: number;
  value_utf8?: string;
  value_base64?: string;
  ttl_left_s?: number;
  present?: false;
}

/** The item as Python left it versus ours: same flags, same bytes, the same seconds to live (±2 for the run's pace). */
function assertSameItem(ours: RawItem | undefined, theirs: GoldenItem, what: string): void {
  if (theirs.present === false) return assert.equal(ours, undefined, `${what}: ${theirs.key} absent`);
  assert.ok(ours, `${what}: ${theirs.key} present`);
  assert.equal(ours.flags, theirs.flags, `${what}: flags`);
  assert.equal(ours.value.toString("base64"), Buffer.from(theirs.value_utf8!, "utf8").toString("base64"), `${what}: bytes ${JSON.stringify(ours.value.toString())}`);
  if (theirs.ttl_left_s === -1) assert.equal(ours.ttl, -1, `${what}: never expires`);
  else assert.ok(ours.ttl <= theirs.ttl_left_s! + 1 && ours.ttl >= theirs.ttl_left_s! - 2, `${what}: ttl ${ours.ttl} vs ${theirs.ttl_left_s}`);
}

interface ResultCase {
  case: string;
  message_as_sent: { decoded: MessageData };
  key_input: string;
  md5_of_key_input: string;
  item: GoldenItem & { key: string };
  wire_storage_commands: { exptime: number }[];
  python_get_result: { returned?: string; raised?: string; orig_exc_type?: string; orig_exc_msg?: string };
}
interface ResultPhase {
  phase: string;
  namespace: string;
  use_namespace_prefix_keys: boolean;
  cases: ResultCase[];
}

const results = golden<{ phases: ResultPhase[] }>("results.json");
const THIRTY_ONE_DAYS_S = 2_678_400;

describe("memcached results against Dramatiq's captures (golden-memcached/results.json)", () => {
  // The golden keys are fixed (MD5s of the captured messages): on a memcached of this test's own, so that another
  // run at the same time cannot overwrite them between a store and its read-back.
  let server: OwnMemcached;
  let url: string;
  let raw: RawMemcached;
  const written: string[] = [];

  before(async () => {
    server = await OwnMemcached.start();
    url = `memcached://${server.address}`;
    raw = await RawMemcached.open(server.port);
  });
  after(async () => {
    await raw.delete(...written);
    raw.close();
    await server.stop();
  });

  for (const phase of results.phases) {
    test(`${phase.phase}: same keys, flags, bytes and TTLs as Python wrote, and each reads Python's items back`, async () => {
      const backend = new MemcachedResultBackend({ url, namespace: phase.namespace, useNamespacePrefixKeys: phase.use_namespace_prefix_keys });
      try {
        for (const c of phase.cases) {
          const message = Message.fromData(c.message_as_sent.decoded);
          const key = backend.buildMessageKey(message);
          written.push(key);
          assert.equal(key, phase.use_namespace_prefix_keys ? c.key_input : c.md5_of_key_input, c.case);
          const exptime = c.wire_storage_commands[0]?.exptime ?? 600;
          // Python's 0 (a result_ttl under 1 s) never expires: Troupe sends 1 s. Python's 31 days vanished at once
          // (memcached read 2678400 as a Unix time): Troupe sends the absolute time. Everything else is identical.
          const ttlMs = c.case === "result_ttl_500ms" ? 500 : exptime === THIRTY_ONE_DAYS_S ? THIRTY_ONE_DAYS_S * 1000 : exptime * 1000;
          if (c.item.present === false) {
            await backend.storeResult(message, 31, ttlMs);
            const ours = await raw.get(key);
            assert.ok(ours && Math.abs(ours.ttl - THIRTY_ONE_DAYS_S) <= 2, `${c.case}: kept for 31 days, ttl ${ours?.ttl}`);
            assert.equal(await backend.getResult(message), 31);
            continue;
          }
          const value = decodeJson(c.item.value_utf8!) as { __t?: string; exn?: { type: string; msg: string } } | null;
          if (value && value.__t === "dramatiq.results.Result") await backend.storeException(message, { name: value.exn!.type, message: value.exn!.msg }, ttlMs);
          else await backend.storeResult(message, value, ttlMs);
          const ours = await raw.get(key);
          if (c.case === "floats") {
            // Python's float 2.0 is the JS number 2: the value reads back equal, its text differs (the encoder's rule).
            assert.deepEqual(decodeJson(ours!.value.toString("utf8")), value);
          } else if (c.case === "result_ttl_500ms") {
            assertSameItem(ours, { ...c.item, ttl_left_s: 1 }, c.case);
          } else assertSameItem(ours, c.item, c.case);

          // The reverse: Python's exact item, written by a foreign client, reads as Python read it.
          await raw.set(key, Buffer.from(c.item.value_base64!, "base64"), c.item.flags!, 600);
          const expected = c.python_get_result;
          if (expected.raised === "dramatiq.results.errors.ResultFailure") {
            await assert.rejects(backend.getResult(message), (err: unknown) => err instanceof ResultFailure && err.origExcType === expected.orig_exc_type && err.origExcMsg === expected.orig_exc_msg, c.case);
          } else assert.deepEqual(await backend.getResult(message), value, c.case);
        }
      } finally {
        await backend.close();
      }
    });
  }

  test("flags a foreign client wrote (flags-interop.json): bytes, ints and text read as JSON; pickles and zlib are refused", async () => {
    const cases = golden<{ results: { written_raw: { key: string; flags: number; value_utf8: string }; dramatiq_get_result: { returned?: string; raised?: string } }[] }>("flags-interop.json").results;
    const backend = new MemcachedResultBackend({ url, useNamespacePrefixKeys: true, namespace: uniqueName("mcflags") });
    try {
      for (const { written_raw: w, dramatiq_get_result: python } of cases) {
        const message = new Message({ queueName: "q", actorName: "a", messageId: `${w.key}-${w.flags}` });
        const key = backend.buildMessageKey(message);
        written.push(key);
        await raw.set(key, w.value_utf8, w.flags, 60);
        const bits = w.flags & ~(32 | 64 | 256);
        if (bits & (1 | 8)) await assert.rejects(backend.getResult(message), ResultError, `flags ${w.flags}`);
        else {
          // Python reads flags 0/32/64/256 as bytes and fails on 2, 4 and 16; their bytes are JSON all the same.
          if (bits === 0) assert.ok(python.returned !== undefined, `Python read flags ${w.flags}`);
          assert.deepEqual(await backend.getResult(message), decodeJson(w.value_utf8), `flags ${w.flags}`);
        }
      }
    } finally {
      await backend.close();
    }
  });
});

interface Step {
  step: string;
  outcome?: { returned?: string };
  items_after?: GoldenItem[];
}
const limits = golden<{ steps: Record<string, Step[]> }>("rate-limits.json").steps;

describe("memcached rate limits against Dramatiq's captures (golden-memcached/rate-limits.json)", () => {
  let raw: RawMemcached;
  let backend: MemcachedRateLimiterBackend;
  const prefix = uniqueName("mcgold");
  const keys: string[] = [];
  /** Golden keys are `golden:<name>`; ours get a prefix of their own. */
  const ours = (goldenKey: string) => {
    const key = goldenKey.replace(/^golden:/, `${prefix}:`);
    keys.push(key);
    return key;
  };
  const returned = (step: Step) => step.outcome?.returned === "True";

  before(async () => {
    raw = await RawMemcached.open();
    backend = new MemcachedRateLimiterBackend({ url: MEMCACHED_URL });
  });
  after(async () => {
    await raw.delete(...keys);
    raw.close();
    await backend.close();
  });

  test("ConcurrentRateLimiter limit 2: add then incr, decr on release, clamped at 0 — step for step", async () => {
    const steps = limits.concurrent_limit2!;
    const limiter = new ConcurrentRateLimiter(ours("golden:concurrent2"), { backend, limit: 2 });
    const actions = [() => limiter.tryAcquire(), () => limiter.tryAcquire(), () => limiter.tryAcquire(), () => limiter.release(), () => limiter.release(), () => limiter.release(), () => limiter.release()];
    for (const [i, step] of steps.entries()) {
      const outcome = await actions[i]!();
      if (typeof outcome === "boolean") assert.equal(outcome, returned(step), step.step);
      const expected = step.items_after![0]!;
      // A failed acquire is undone here (Python leaves the counter one too high until a release): one lower.
      const undone = i >= 2 ? { ...expected, value_utf8: String(Number(expected.value_utf8!.trim()) - 1 < 0 ? 0 : Number(expected.value_utf8!.trim()) - 1) } : expected;
      assertSameItem(await raw.get(limiter.key), i === 6 ? expected : undone, step.step);
    }
  });

  test("ConcurrentRateLimiter mutex: the failed acquire is undone, so the mutex is free after its release (Python's stays taken)", async () => {
    const [held, failed, released, afterRelease] = limits.concurrent_limit1_mutex!;
    const mutex = new ConcurrentRateLimiter(ours("golden:mutex"), { backend, limit: 1 });
    assert.equal(await mutex.tryAcquire(), returned(held!));
    assertSameItem(await raw.get(mutex.key), held!.items_after![0]!, held!.step);
    assert.equal(await mutex.tryAcquire(), returned(failed!));
    assertSameItem(await raw.get(mutex.key), { ...failed!.items_after![0]!, value_utf8: "1" }, failed!.step);
    await mutex.release();
    assertSameItem(await raw.get(mutex.key), { ...released!.items_after![0]!, value_utf8: "0" }, released!.step);
    assert.equal(returned(afterRelease!), false, "Python's mutex stays taken");
    assert.equal(await mutex.tryAcquire(), true, "ours is free again");
  });

  test("a decrement from 10 leaves memcached's padded '9 ', which reads as 9 (concurrent and barrier)", async () => {
    const [padded] = limits.concurrent_decr_padding!;
    const limiter = new ConcurrentRateLimiter(ours("golden:concurrent20"), { backend, limit: 20, ttl: 60_000 });
    for (let i = 0; i < 10; i++) assert.equal(await limiter.tryAcquire(), true);
    await limiter.release();
    assertSameItem(await raw.get(limiter.key), padded!.items_after![0]!, padded!.step);
    assert.equal(await limiter.tryAcquire(), true, "incr accepts the padded form");

    const [barrierStep] = limits.barrier_decr_padding!;
    const barrier = new Barrier(ours("golden:barrier10"), { backend, ttl: 60_000 });
    assert.equal(await barrier.create(10), true);
    assert.equal(await barrier.wait({ block: false }), returned(barrierStep!));
    assertSameItem(await raw.get(barrier.key), barrierStep!.items_after![0]!, barrierStep!.step);
  });

  test("BucketRateLimiter: <key>@<bucket start ms>, flags 4, exptime = bucket seconds (1 s for a sub-second bucket, not never)", async () => {
    const steps = limits.bucket_limit2_per_60000ms!;
    const bucket = new BucketRateLimiter(ours("golden:bucket"), { backend, limit: 2, bucket: 60_000 });
    const now = Date.now();
    for (const [i, step] of steps.entries()) {
      const start = Date.now();
      assert.equal(await bucket.tryAcquire(), returned(step), step.step);
      // The bucket boundary may fall between two acquires: then the step is redone in the new bucket.
      if (Math.floor(start / 60_000) !== Math.floor(now / 60_000)) return;
      const key = `${bucket.key}@${now - (now % 60_000)}`;
      keys.push(key);
      const expected = step.items_after![0]!;
      assertSameItem(await raw.get(key), i === 2 ? { ...expected, value_utf8: "2" } : expected, step.step);
    }
    const [sub] = limits.bucket_500ms_ttl_zero!;
    const fast = new BucketRateLimiter(ours("golden:bucket500"), { backend, limit: 2, bucket: 500 });
    const at = Date.now();
    assert.equal(await fast.tryAcquire(), returned(sub!));
    const key = `${fast.key}@${at - (at % 500)}`;
    keys.push(key);
    const item = await raw.get(key);
    if (item) assertSameItem(item, { ...sub!.items_after![0]!, ttl_left_s: 1 }, sub!.step);
  });

  test("WindowRateLimiter: add 0, gets/cas per second key, flags 4, exptime = window; a failed acquire leaves the counters", async () => {
    const window = new WindowRateLimiter(ours("golden:window"), { backend, limit: 3, window: 5 });
    const outcomes: boolean[] = [];
    const seconds = new Set<number>();
    for (let i = 0; i < 4; i++) {
      seconds.add(Math.floor(Date.now() / 1000));
      outcomes.push(await window.tryAcquire());
      seconds.add(Math.floor(Date.now() / 1000));
    }
    assert.deepEqual(outcomes, [true, true, true, false]);
    const items = await Promise.all([...seconds].map((s) => raw.get(`${window.key}@${s}`)));
    keys.push(...[...seconds].map((s) => `${window.key}@${s}`));
    const present = items.filter((item): item is RawItem => item !== undefined);
    assert.equal(present.reduce((sum, item) => sum + Number(item.value.toString().trim()), 0), 3, "the failed acquire added nothing");
    for (const item of present) {
      assert.equal(item.flags, limits.window_limit3_over_5s![0]!.items_after![0]!.flags);
      assert.ok(item.ttl >= 3 && item.ttl <= 5, `ttl ${item.ttl}`);
    }
  });

  test("Barrier: add with the parties, decr per wait, cleared at 0, no @events item; a second create fails", async () => {
    const steps = limits.barrier_3_parties!;
    const barrier = new Barrier(ours("golden:barrier"), { backend });
    const actions = [() => barrier.create(3), () => barrier.wait({ block: false }), () => barrier.wait({ block: false }), () => barrier.wait({ block: false }), () => barrier.wait({ block: false }), () => barrier.create(3)];
    for (const [i, step] of steps.entries()) {
      assert.equal(await actions[i]!(), returned(step), step.step);
      for (const item of step.items_after!) assertSameItem(await raw.get(item.key.replace(/^golden:/, `${prefix}:`)), item, step.step);
    }
  });

  test("a blocking barrier wait (NotImplementedError in Python) polls the counter: cleared by another party, or timed out", async () => {
    const barrier = new Barrier(ours("golden:barrier-blocking"), { backend, ttl: 60_000 });
    assert.equal(await barrier.create(2), true);
    assert.equal(await barrier.wait({ timeout: 100 }), false, "nobody else arrived");
    const [step] = limits.barrier_blocking_wait!;
    for (const item of step!.items_after!) assertSameItem(await raw.get(item.key.replace(/^golden:/, `${prefix}:`)), item, "one decr, as Python's, and no @events");
    const other = new Barrier(ours("golden:barrier-blocking2"), { backend, ttl: 60_000 });
    await other.create(2);
    const waiting = other.wait({ timeout: 10_000 });
    // The second party is a Python peer: a bare decr, as Dramatiq's wait(block=False) sends.
    await backend.decr(other.key, 1, 1);
    assert.equal(await waiting, true);
  });

  test("group completion barrier: the group's UUID, flags 4, the member count, 86400 s; each member's arrival a decr", async () => {
    const [created, done] = limits.group_completion_barrier!;
    const sent: Message[] = [];
    const broker = new MemoryBroker({ middleware: [new GroupCallbacks({ rateLimiterBackend: backend }), { afterEnqueue: (_b, message) => void sent.push(message) }] });
    const queue = uniqueName("mcgroup");
    const member = (i: number) => new Message({ queueName: queue, actorName: "gadd", args: [i] });
    await group([member(1), member(2), member(3)], { broker }).addCompletionCallback(new Message({ queueName: queue, actorName: "gdone" })).run();
    const uuid = sent[0]!.options.group_completion_uuid as string;
    keys.push(uuid);
    assert.match(uuid, /^[0-9a-f-]{36}$/);
    assertSameItem(await raw.get(uuid), { ...created!.items_after![0]!, key: uuid }, created!.step);
    // What GroupCallbacks does as each member succeeds: a non-blocking wait; the last one clears it.
    const arrivals = [];
    for (let i = 0; i < 3; i++) arrivals.push(await new Barrier(uuid, { backend, ttl: 86_400_000 }).wait({ block: false }));
    assert.deepEqual(arrivals, [false, false, true]);
    for (const item of done!.items_after!) assertSameItem(await raw.get(item.key.replace(created!.items_after![0]!.key, uuid)), item, done!.step);
    await broker.purge(queue);
    await broker.close();
  });
});

interface Vector {
  key: string;
  one_at_a_time_u32: number;
  observed: Record<string, number>;
}

test("key placement across servers is pylibmc's: one-at-a-time over sign-extended bytes, modulo the servers in order (hashing.json)", () => {
  const { vectors } = golden<{ vectors: Vector[] }>("hashing.json");
  assert.ok(vectors.length >= 30);
  assert.ok(vectors.some((v) => /[^\x00-\x7f]/.test(v.key)), "non-ASCII keys are covered");
  for (const vector of vectors) {
    assert.equal(oneAtATime(vector.key), vector.one_at_a_time_u32, vector.key);
    for (const [order, index] of Object.entries(vector.observed)) assert.equal(serverIndex(vector.key, order.split(" ").length), index, `${vector.key} on ${order}`);
  }
  assert.equal(serverIndex("anything", 1), 0);
});

interface Experiment {
  servers_in_order: string[];
  rules_matched: Record<string, string>;
  dramatiq_backends: { checked: number; matched_one_at_a_time_modulo: number; samples: { key: string; server_index: number }[] };
}

test("Dramatiq's own backends on 2 and 3 servers, in both orders, put their keys where serverIndex says (hashing.json experiments)", () => {
  const { experiments } = golden<{ experiments: Experiment[] }>("hashing.json");
  assert.deepEqual(experiments.map((e) => e.servers_in_order.length).sort(), [2, 2, 3, 3]);
  for (const experiment of experiments) {
    const order = experiment.servers_in_order.join(" ");
    // The rule this reproduces is the one that matched all 496 keys in the capture.
    assert.equal(experiment.rules_matched["one_at_a_time(key bytes, chars sign-extended) % n"], "496/496", order);
    assert.equal(experiment.dramatiq_backends.matched_one_at_a_time_modulo, experiment.dramatiq_backends.checked, order);
    assert.ok(experiment.dramatiq_backends.samples.length > 0);
    for (const { key, server_index } of experiment.dramatiq_backends.samples) assert.equal(serverIndex(key, experiment.servers_in_order.length), server_index, `${key} on ${order}`);
  }
});

test("every capture in golden-memcached/ is read by a memcached test (a capture no test reads proves nothing)", () => {
  const captures = readdirSync(goldenMemcachedDir).filter((name) => /\.(json|txt)$/.test(name));
  assert.deepEqual(captures.sort(), ["flags-interop.json", "hashing.json", "rate-limits.json", "results.json", "wire-transcript.txt"]);
  const sources = readdirSync(join(repoRoot, "test", "memcached"))
    .filter((name) => name.endsWith(".test.ts"))
    .map((name) => readFileSync(join(repoRoot, "test", "memcached", name), "utf8"));
  // Each test file reads its captures by name through a one-argument helper: golden<…>("x.json"), goldenText("x.txt").
  for (const capture of captures) assert.ok(sources.some((source) => source.includes(`("${capture}")`)), `${capture} is read by no test`);
});
