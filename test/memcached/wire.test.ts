/**
 * Troupe's memcached traffic against pylibmc's, exchange by exchange: wire-transcript.txt, the `wire` of every
 * rate-limits.json step and the `set` of every results.json case. Troupe speaks the binary protocol; the recorder
 * renders each binary exchange as the text-protocol bytes carrying the same fields (verb, key, flags, exptime,
 * length, value, CAS unique, reply), so the comparison is of text. Then the limiters on the items flags-interop.json
 * had a foreign client write. The golden keys are used as they are, on a memcached of this test's own, so that no
 * other run shares them.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  Barrier,
  BucketRateLimiter,
  ConcurrentRateLimiter,
  GroupCallbacks,
  MemcachedRateLimiterBackend,
  MemcachedResultBackend,
  MemoryBroker,
  Message,
  ResultFailure,
  ResultTimeout,
  WindowRateLimiter,
  decodeJson,
  encodeJson,
  group,
  type MessageData,
} from "troupe";
import { goldenMemcachedDir, uniqueName } from "../support/env.js";
import { until } from "../support/wait.js";
import { OwnMemcached } from "./own-memcached.js";
import { RawMemcached } from "./raw.js";
import { WireRecorder, type Exchange } from "./recorder.js";

const goldenText = (name: string) => readFileSync(join(goldenMemcachedDir, name), "utf8");
const golden = <T>(name: string) => JSON.parse(goldenText(name)) as T;

/** wire-transcript.txt: `## title` then `> request` / `< reply` lines, escaped as the JSON captures are. */
function transcript(): Map<string, Exchange[]> {
  const sessions = new Map<string, Exchange[]>();
  let current: Exchange[] | undefined;
  for (const line of goldenText("wire-transcript.txt").split("\n")) {
    if (line.startsWith("## ")) sessions.set(line.slice(3), (current = []));
    else if (line.startsWith("> ")) current!.push({ request: line.slice(2), reply: "" });
    else if (line.startsWith("< ")) current!.at(-1)!.reply = line.slice(2);
  }
  return sessions;
}

/**
 * pylibmc sends a window's reads as one `gets k0 … k(w-1)`; Troupe's keys may live on different servers, so it reads
 * each with its own get (the same keys, in the same order). Split the one exchange into those per-key ones.
 */
function perKeyReads(exchanges: Exchange[]): Exchange[] {
  return exchanges.flatMap((exchange) => {
    const keys = /^gets (.+)\\r\\n$/.exec(exchange.request)?.[1]!.split(" ");
    if (!keys || keys.length < 2) return [exchange];
    const blocks = new Map([...exchange.reply.matchAll(/VALUE (\S+) (.*?)\\r\\n(.*?)\\r\\n/g)].map((m) => [m[1]!, `VALUE ${m[1]} ${m[2]}\\r\\n${m[3]}\\r\\nEND\\r\\n`]));
    return keys.map((key) => ({ request: `gets ${key}\\r\\n`, reply: blocks.get(key) ?? "END\\r\\n" }));
  });
}

/**
 * Troupe's one deliberate difference on a limiter's wire: an `incr` past the limit is undone with a `decr` at once
 * (Python leaves it, so its counter stays raised). Counters then read one lower per undo than Python's, clamped at 0
 * as memcached clamps a decr.
 */
class Undo {
  private readonly undone = new Map<string, number>();
  constructor(private readonly limit: number) {}

  apply(exchanges: Exchange[]): Exchange[] {
    return exchanges.flatMap((exchange) => {
      const counter = /^(incr|decr) (\S+) 1\\r\\n$/.exec(exchange.request);
      const reply = /^(\d+)\\r\\n$/.exec(exchange.reply);
      if (!counter || !reply) return [exchange];
      const key = counter[2]!;
      const value = Math.max(0, Number(reply[1]) - (this.undone.get(key) ?? 0));
      const ours = { request: exchange.request, reply: `${value}\\r\\n` };
      if (counter[1] !== "incr" || value <= this.limit) return [ours];
      this.undone.set(key, (this.undone.get(key) ?? 0) + 1);
      return [ours, { request: `decr ${key} 1\\r\\n`, reply: `${value - 1}\\r\\n` }];
    });
  }
}

/**
 * What differs from run to run, replaced on both sides: `@<time>` key suffixes become offsets from the first one
 * seen (so the window's seconds t, t+1, t+5 stay distinct), CAS uniques become #1, #2… in order of appearance (so a
 * `cas` must send the unique just read), and `rename` maps this run's keys to the golden ones.
 */
function normalize(lines: string[], rename: Record<string, string> = {}): string[] {
  let origin: number | undefined;
  const uniques = new Map<string, string>();
  const unique = (n: string) => uniques.get(n) ?? (uniques.set(n, `#${uniques.size + 1}`), uniques.get(n)!);
  return lines.map((line) => {
    for (const [from, to] of Object.entries(rename)) line = line.replaceAll(from, to);
    return line
      .replace(/@(\d{10,13})\b/g, (_, n: string) => {
        origin ??= Number(n);
        const offset = Number(n) - origin;
        return `@t${offset < 0 ? "" : "+"}${offset}`;
      })
      .replace(/(VALUE \S+ \d+ \d+ )(\d+)(\\r\\n)/g, (_, head: string, n: string, tail: string) => `${head}${unique(n)}${tail}`)
      .replace(/(> cas \S+ \d+ \d+ \d+ )(\d+)/, (_, head: string, n: string) => `${head}${unique(n)}`);
  });
}

const lines = (exchanges: Exchange[], label = "") => exchanges.flatMap((e) => [`${label}> ${e.request}`, `${label}< ${e.reply}`]);

let server: OwnMemcached;
let results: WireRecorder;
let limits: WireRecorder;

before(async () => {
  server = await OwnMemcached.start();
  const target = { host: "127.0.0.1", port: server.port };
  // Dramatiq's results client reads with get, its rate-limit client with gets (it forces libmemcached's cas).
  [results, limits] = await Promise.all([WireRecorder.start(target, { casReads: false }), WireRecorder.start(target, { casReads: true })]);
});
after(async () => {
  await Promise.all([results.close(), limits.close()]);
  await server.stop();
});

/**
 * Run `scenario` until it ran within one `period` ms of the clock (a bucket, a second) as the capture did, at most 5
 * tries; each try starts at most `latest` ms into a period, so that one normally suffices.
 */
async function withinPeriods<T>(period: number, latest: number, scenario: (attempt: number) => Promise<{ value: T; crossed: boolean }>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    await until(() => Date.now() % period < latest, `a point within ${latest} ms of a ${period} ms period's start`, { timeout: period + 1000, interval: 5 });
    const { value, crossed } = await scenario(attempt);
    if (!crossed) return value;
    limits.take();
    if (attempt === 4) throw new Error(`every attempt crossed a ${period} ms boundary`);
  }
}

describe("wire-transcript.txt: each session's exchanges, as pylibmc sent them", () => {
  const sessions = transcript();
  const session = (prefix: string) => [...sessions].find(([title]) => title.startsWith(prefix))!;
  const message = (actorName: string, messageId: string) => new Message({ queueName: "golden_q", actorName, messageId });

  test("the transcript holds the seven sessions compared below", () => {
    assert.equal(sessions.size, 7);
  });

  test("results: store then get, a failure stored then read, a blocking read of a missing key", async () => {
    const backend = new MemcachedResultBackend({ url: results.url });
    try {
      const [storeTitle, store] = session("results: store_result");
      await backend.storeResult(message("add", "5e7f5c0e-1111-4222-8333-444455556666"), 3, 600_000);
      assert.equal(await backend.getResult(message("add", "5e7f5c0e-1111-4222-8333-444455556666")), 3);
      assert.deepEqual(lines(results.take()), lines(store), storeTitle);

      const [failTitle, fail] = session("results: store_exception");
      await backend.storeException(message("boom", "5e7f5c0e-1111-4222-8333-777788889999"), { name: "ValueError", message: "bad" }, 600_000);
      await assert.rejects(backend.getResult(message("boom", "5e7f5c0e-1111-4222-8333-777788889999")), ResultFailure);
      assert.deepEqual(lines(results.take()), lines(fail), failTitle);

      // Python polls at 100 ms and up (2 reads in 400 ms), Troupe at 5 ms doubling to 50: more reads, each the same.
      const [blockTitle, block] = session("results: get_result(block=True");
      await assert.rejects(backend.getResult(message("add", "missing"), { block: true, timeout: 400 }), ResultTimeout);
      const reads = results.take();
      assert.ok(reads.length >= block.length, `${reads.length} reads`);
      assert.deepEqual(new Set(lines(reads)), new Set(lines(block)), blockTitle);
    } finally {
      await backend.close();
    }
  });

  test("limiters and the barrier: add/incr/decr, add 0 then gets/cas, the same flags, exptimes and replies", async () => {
    const backend = new MemcachedRateLimiterBackend({ url: limits.url });
    try {
      const [mutexTitle, mutex] = session("ConcurrentRateLimiter");
      const lock = new ConcurrentRateLimiter("t:mutex", { backend, limit: 1 });
      assert.deepEqual([await lock.tryAcquire(), await lock.tryAcquire()], [true, false]);
      await lock.release();
      assert.deepEqual(lines(limits.take()), lines(new Undo(1).apply(mutex)), mutexTitle);

      const [bucketTitle, bucket] = session("BucketRateLimiter");
      const bucketLines = await withinPeriods(60_000, 55_000, async (attempt) => {
        const key = attempt === 0 ? "t:bucket" : `t:bucket-${attempt}`;
        const start = Math.floor(Date.now() / 60_000);
        const limiter = new BucketRateLimiter(key, { backend, limit: 1, bucket: 60_000 });
        assert.deepEqual([await limiter.tryAcquire(), await limiter.tryAcquire()], [true, false]);
        return { value: normalize(lines(limits.take()), { [key]: "t:bucket" }), crossed: Math.floor(Date.now() / 60_000) !== start };
      });
      assert.deepEqual(bucketLines, normalize(lines(new Undo(1).apply(bucket))), bucketTitle);

      const [windowTitle, window] = session("WindowRateLimiter");
      const windowLines = await withinPeriods(1000, 300, async (attempt) => {
        const key = attempt === 0 ? "t:window" : `t:window-${attempt}`;
        const start = Math.floor(Date.now() / 1000);
        const limiter = new WindowRateLimiter(key, { backend, limit: 2, window: 3 });
        assert.deepEqual([await limiter.tryAcquire(), await limiter.tryAcquire(), await limiter.tryAcquire()], [true, true, false]);
        return { value: normalize(lines(limits.take()), { [key]: "t:window" }), crossed: Math.floor(Date.now() / 1000) !== start };
      });
      assert.deepEqual(windowLines, normalize(lines(perKeyReads(window))), windowTitle);

      const [barrierTitle, barrierWire] = session("Barrier");
      const barrier = new Barrier("t:barrier", { backend });
      assert.deepEqual([await barrier.create(2), await barrier.wait({ block: false }), await barrier.wait({ block: false })], [true, false, true]);
      assert.deepEqual(lines(limits.take()), lines(barrierWire), barrierTitle);
    } finally {
      await backend.close();
    }
  });
});

interface WireStep {
  step: string;
  outcome?: { returned?: string };
  wire?: Exchange[] | string;
}
const steps = golden<{ steps: Record<string, WireStep[] | string> }>("rate-limits.json").steps;
const scenario = (name: string) => steps[name] as WireStep[];
const wireOf = (step: WireStep) => step.wire as Exchange[];

describe("rate-limits.json: every step's wire", () => {
  let backend: MemcachedRateLimiterBackend;
  before(() => {
    backend = new MemcachedRateLimiterBackend({ url: limits.url });
  });
  after(() => backend.close());

  /** Run each step's action, then compare the whole scenario, step by step, with Python's (Undo applied). */
  async function compare(name: string, limit: number, actions: (() => Promise<unknown>)[]): Promise<void> {
    const golden = scenario(name);
    assert.equal(actions.length, golden.length, `${name}: one action per captured step`);
    const ours: string[] = [];
    for (const [i, step] of golden.entries()) {
      await actions[i]!();
      ours.push(...lines(limits.take(), `${step.step}: `));
    }
    const undo = new Undo(limit);
    const theirs = golden.flatMap((step) => lines(undo.apply(perKeyReads(wireOf(step))), `${step.step}: `));
    assert.deepEqual(normalize(ours), normalize(theirs), name);
  }

  test("ConcurrentRateLimiter: the mutex and limit 2", async () => {
    const mutex = new ConcurrentRateLimiter("golden:mutex", { backend, limit: 1 });
    await compare("concurrent_limit1_mutex", 1, [() => mutex.tryAcquire(), () => mutex.tryAcquire(), () => mutex.release(), () => mutex.tryAcquire()]);
    const two = new ConcurrentRateLimiter("golden:concurrent2", { backend, limit: 2 });
    await compare("concurrent_limit2", 2, [() => two.tryAcquire(), () => two.tryAcquire(), () => two.tryAcquire(), () => two.release(), () => two.release(), () => two.release(), () => two.release()]);
  });

  test("a decr from 10 (padding) for the limiter and the barrier", async () => {
    const twenty = new ConcurrentRateLimiter("golden:concurrent20", { backend, limit: 20 });
    for (let i = 0; i < 10; i++) assert.equal(await twenty.tryAcquire(), true);
    limits.take();
    await compare("concurrent_decr_padding", 20, [() => twenty.release()]);
    const barrier = new Barrier("golden:barrier10", { backend });
    assert.equal(await barrier.create(10), true);
    limits.take();
    await compare("barrier_decr_padding", 0, [() => barrier.wait({ block: false })]);
  });

  test("concurrent_binary_protocol: Python's binary client left the item Troupe's binary client leaves", async () => {
    const [step] = scenario("concurrent_binary_protocol");
    assert.match(step!.wire as string, /binary protocol/);
    const limiter = new ConcurrentRateLimiter("golden:concurrent-binary", { backend, limit: 1 });
    assert.equal(String(await limiter.tryAcquire()), step!.outcome!.returned!.toLowerCase());
    assert.deepEqual(normalize(lines(limits.take())), normalize(lines(scenario("concurrent_limit1_mutex")[0]!.wire as Exchange[], ""), { "golden:mutex": "golden:concurrent-binary" }));
  });

  test("BucketRateLimiter: limit 2 per 60 s, and a 500 ms bucket (exptime 1 where Python sends 0, never)", async () => {
    await withinPeriods(60_000, 55_000, async (attempt) => {
      const key = attempt === 0 ? "golden:bucket" : `golden:bucket-${attempt}`;
      const start = Math.floor(Date.now() / 60_000);
      const bucket = new BucketRateLimiter(key, { backend, limit: 2, bucket: 60_000 });
      const outcomes: boolean[] = [];
      const golden = scenario("bucket_limit2_per_60000ms");
      const ours = [];
      for (const step of golden) {
        outcomes.push(await bucket.tryAcquire());
        ours.push(...lines(limits.take(), `${step.step}: `));
      }
      const crossed = Math.floor(Date.now() / 60_000) !== start;
      if (!crossed) {
        assert.deepEqual(outcomes.map(String), golden.map((s) => s.outcome!.returned!.toLowerCase()));
        const undo = new Undo(2);
        assert.deepEqual(normalize(ours, { [key]: "golden:bucket" }), normalize(golden.flatMap((s) => lines(undo.apply(wireOf(s)), `${s.step}: `))));
      }
      return { value: undefined, crossed };
    });
    const [sub] = scenario("bucket_500ms_ttl_zero");
    const fast = new BucketRateLimiter("golden:bucket500", { backend, limit: 2, bucket: 500 });
    assert.equal(await fast.tryAcquire(), true);
    const theirs = wireOf(sub!).map((e) => ({ ...e, request: e.request.replace(/^(add \S+ 4) 0 /, "$1 1 ") }));
    assert.match(theirs[0]!.request, /^add \S+ 4 1 1\\r\\n1\\r\\n$/);
    assert.deepEqual(normalize(lines(limits.take())), normalize(lines(theirs)));
  });

  test("WindowRateLimiter limit 3 over 5 s: seconds t, t, t+1, t+1 (refused), t+5", async () => {
    const golden = scenario("window_limit3_over_5s");
    const seconds = [0, 0, 1, 1, 5];
    assert.equal(golden.length, seconds.length);
    await withinPeriods(1000, 300, async (attempt) => {
      const key = attempt === 0 ? "golden:window" : `golden:window-${attempt}`;
      const window = new WindowRateLimiter(key, { backend, limit: 3, window: 5 });
      const t = Math.floor(Date.now() / 1000);
      const ours: string[] = [];
      const outcomes: boolean[] = [];
      for (const [i, step] of golden.entries()) {
        await until(() => Date.now() >= (t + seconds[i]!) * 1000, `second t+${seconds[i]}`, { interval: 5 });
        outcomes.push(await window.tryAcquire());
        ours.push(...lines(limits.take(), `${step.step}: `));
        if (Math.floor(Date.now() / 1000) !== t + seconds[i]!) return { value: undefined, crossed: true };
      }
      assert.deepEqual(outcomes.map(String), golden.map((s) => s.outcome!.returned!.toLowerCase()));
      assert.deepEqual(normalize(ours, { [key]: "golden:window" }), normalize(golden.flatMap((s) => lines(perKeyReads(wireOf(s)), `${s.step}: `))));
      return { value: undefined, crossed: false };
    });
  });

  test("Barrier: three parties, a second create; a blocking wait sends Python's decr, then polls with gets", async () => {
    const barrier = new Barrier("golden:barrier", { backend });
    await compare("barrier_3_parties", 0, [() => barrier.create(3), () => barrier.wait({ block: false }), () => barrier.wait({ block: false }), () => barrier.wait({ block: false }), () => barrier.wait({ block: false }), () => barrier.create(3)]);

    const [blocking] = scenario("barrier_blocking_wait");
    const waiting = new Barrier("golden:barrier-blocking", { backend });
    assert.equal(await waiting.create(2), true);
    limits.take();
    assert.equal(await waiting.wait({ timeout: 100 }), false);
    const [decr, ...polls] = limits.take();
    assert.deepEqual(lines([decr!]), lines(wireOf(blocking!)));
    assert.ok(polls.length > 0);
    for (const poll of polls) assert.match(`${poll.request} ${poll.reply}`, /^gets golden:barrier-blocking\\r\\n VALUE golden:barrier-blocking 4 1 \d+\\r\\n1\\r\\nEND\\r\\n$/);
  });

  test("group completion barrier: add <uuid> 4 86400 <members>", async () => {
    const [created] = scenario("group_completion_barrier");
    const sent: Message[] = [];
    const broker = new MemoryBroker({ middleware: [new GroupCallbacks({ rateLimiterBackend: backend }), { afterEnqueue: (_b, message) => void sent.push(message) }] });
    const member = (i: number) => new Message({ queueName: "golden_q", actorName: "gadd", args: [i] });
    await group([member(1), member(2), member(3)], { broker }).addCompletionCallback(new Message({ queueName: "golden_q", actorName: "gdone" })).run();
    const uuid = sent[0]!.options.group_completion_uuid as string;
    const theirs = (created!.wire as Exchange[])[0]!.request.split(" ")[1]!;
    assert.deepEqual(normalize(lines(limits.take()), { [uuid]: theirs }), normalize(lines(wireOf(created!))));
    await broker.purge("golden_q");
    await broker.close();
  });
});

interface ResultCase {
  case: string;
  message_as_sent: { decoded: MessageData };
  item: { key: string; value_utf8?: string };
  wire_storage_commands: { verb: string; flags: number; exptime: number; bytes: number }[];
}

test("results.json: every text-protocol case's set, header and value, as pylibmc sent it", async () => {
  const THIRTY_ONE_DAYS_S = 2_678_400;
  const phases = golden<{ phases: { phase: string; namespace: string; use_namespace_prefix_keys: boolean; cases: ResultCase[] }[] }>("results.json").phases;
  let compared = 0;
  for (const phase of phases) {
    const backend = new MemcachedResultBackend({ url: results.url, namespace: phase.namespace, useNamespacePrefixKeys: phase.use_namespace_prefix_keys });
    try {
      for (const c of phase.cases) {
        const [command] = c.wire_storage_commands;
        // The binary=True phase's wire was binary and is not in the capture; its items are compared in golden.test.ts.
        if (!command) continue;
        const message = Message.fromData(c.message_as_sent.decoded);
        const value = c.item.value_utf8 !== undefined ? (decodeJson(c.item.value_utf8) as { __t?: string; exn?: { type: string; msg: string } } | null) : 31;
        const ttlMs = c.case === "result_ttl_500ms" ? 500 : command.exptime * 1000;
        if (value && typeof value === "object" && value.__t === "dramatiq.results.Result") await backend.storeException(message, { name: value.exn!.type, message: value.exn!.msg }, ttlMs);
        else await backend.storeResult(message, value, ttlMs);
        const [set, ...more] = results.take();
        assert.deepEqual(more, [], c.case);
        // Python's float 2.0 is the JS number 2 (the encoder's rule): the same value in fewer bytes.
        const bytes = c.case === "floats" ? encodeJson(value) : c.item.value_utf8 ?? "31";
        // Deliberate: under 1 s Troupe sends 1 (Python's 0 never expires); over 30 days the absolute time (Python's
        // relative 2678400 is read as a past Unix time and the item vanishes).
        const exptime = c.case === "result_ttl_500ms" ? "1" : command.exptime === THIRTY_ONE_DAYS_S ? "(absolute)" : String(command.exptime);
        const ours = set!.request.replace(/^(set \S+ \d+ )(\d+)/, (_, head: string, n: string) => `${head}${Math.abs(Number(n) - Math.trunc(Date.now() / 1000) - THIRTY_ONE_DAYS_S) <= 2 ? "(absolute)" : n}`);
        assert.equal(ours, `${command.verb} ${c.item.key ?? backend.buildMessageKey(message)} ${command.flags} ${exptime} ${Buffer.byteLength(bytes)}\\r\\n${bytes.replaceAll("\\", "\\\\")}\\r\\n`, `${phase.phase} ${c.case}`);
        if (c.case !== "floats" && c.case !== "result_ttl_31_days") assert.equal(Buffer.byteLength(bytes), command.bytes, c.case);
        assert.equal(set!.reply, "STORED\\r\\n");
        compared++;
      }
    } finally {
      await backend.close();
    }
  }
  assert.equal(compared, phases.flatMap((p) => p.cases).filter((c) => c.wire_storage_commands.length > 0).length);
});

interface ForeignItem {
  written_raw: { key: string; flags: number; value_utf8: string; exptime: number };
  items_after?: { key: string; flags: number; value_utf8: string }[];
  item_after?: { flags: number; value_utf8: string };
  [outcome: string]: unknown;
}

describe("flags-interop.json: counters a foreign client wrote, under each flag, as the limiters find them", () => {
  const interop = golden<Record<"window" | "concurrent" | "barrier" | "bucket", ForeignItem[]>>("flags-interop.json");
  let raw: RawMemcached;
  let backend: MemcachedRateLimiterBackend;
  const returned = (c: ForeignItem, name: string) => (c[name] as { returned?: string; raised?: string }).returned;

  before(async () => {
    raw = await RawMemcached.open(server.port);
    backend = new MemcachedRateLimiterBackend({ url: `memcached://${server.address}` });
  });
  after(async () => {
    raw.close();
    await backend.close();
  });

  test("window: Python sums flags 2 and 4 and fails on 0 and 16 (bytes, str); Troupe sums every decimal and writes flags 4 back", async () => {
    for (const c of interop.window) {
      const w = c.written_raw;
      const limiterKey = w.key.replace(/@\d+$/, "");
      const outcome = c["dramatiq_WindowRateLimiter_acquire(limit=10, window=5)"] as { returned?: string; raised?: string };
      await withinPeriods(1000, 300, async () => {
        const second = Math.floor(Date.now() / 1000);
        const ago = Number(/@(\d+)$/.exec(w.key)![1]) < Number(/@(\d+)$/.exec(c.items_after![0]!.key)![1]) ? 1 : 0;
        await raw.delete(`${limiterKey}@${second}`, `${limiterKey}@${second - 1}`);
        assert.equal(await raw.set(`${limiterKey}@${second - ago}`, w.value_utf8, w.flags, w.exptime), "STORED");
        assert.equal(await new WindowRateLimiter(limiterKey, { backend, limit: 10, window: 5 }).tryAcquire(), true, `${w.key} flags ${w.flags}`);
        if (Math.floor(Date.now() / 1000) !== second) return { value: undefined, crossed: true };
        const current = await raw.get(`${limiterKey}@${second}`);
        // Where Python succeeded, the same item; where it raised, the item Python would have left had it read the bytes.
        const expected = outcome.returned === "True" ? c.items_after![0]! : { flags: 4, value_utf8: String((ago ? 0 : 3) + 1) };
        assert.deepEqual({ flags: current?.flags, value: current?.value.toString() }, { flags: expected.flags, value: expected.value_utf8 }, `${w.key} flags ${w.flags}`);
        if (outcome.returned !== "True") assert.match(outcome.raised!, /TypeError/);
        return { value: undefined, crossed: false };
      });
    }
  });

  test("concurrent: incr keeps the foreign flags and padding; a value that is not decimal digits is refused, as memcached refuses Python's incr", async () => {
    for (const c of interop.concurrent) {
      const w = c.written_raw;
      const key = `${w.key}:${uniqueName("t")}`;
      assert.equal(await raw.set(key, w.value_utf8, w.flags, w.exptime), "STORED");
      const limiter = new ConcurrentRateLimiter(key, { backend, limit: 2 });
      const python = c["dramatiq_ConcurrentRateLimiter_acquire(limit=2)"] as { returned?: string; raised?: string };
      if (python.returned === "True") assert.equal(await limiter.tryAcquire(), true, w.key);
      else await assert.rejects(limiter.tryAcquire(), /refused incr/, w.key);
      const item = await raw.get(key);
      assert.deepEqual({ flags: item?.flags, value: item?.value.toString() }, { flags: c.item_after!.flags, value: c.item_after!.value_utf8 }, w.key);
      await raw.delete(key);
    }
  });

  test("barrier and bucket on items written with flags 0: the same outcomes (the bucket's failed acquire undone)", async () => {
    const [barrierCase] = interop.barrier;
    await raw.set(barrierCase!.written_raw.key, barrierCase!.written_raw.value_utf8, 0, barrierCase!.written_raw.exptime);
    const barrier = new Barrier(barrierCase!.written_raw.key, { backend });
    assert.deepEqual([String(await barrier.wait({ block: false })), String(await barrier.wait({ block: false }))], [returned(barrierCase!, "wait_1"), returned(barrierCase!, "wait_2")].map((r) => r!.toLowerCase()));
    assert.equal((await raw.get(barrier.key))?.value.toString(), barrierCase!.item_after!.value_utf8);

    const [bucketCase] = interop.bucket;
    await withinPeriods(60_000, 55_000, async () => {
      const name = bucketCase!.written_raw.key.replace(/@\d+$/, "");
      const start = Date.now() - (Date.now() % 60_000);
      await raw.set(`${name}@${start}`, bucketCase!.written_raw.value_utf8, 0, bucketCase!.written_raw.exptime);
      const bucket = new BucketRateLimiter(name, { backend, limit: 2, bucket: 60_000 });
      const outcomes = [String(await bucket.tryAcquire()), String(await bucket.tryAcquire())];
      if (Date.now() - (Date.now() % 60_000) !== start) return { value: undefined, crossed: true };
      assert.deepEqual(outcomes, [returned(bucketCase!, "acquire_1"), returned(bucketCase!, "acquire_2")].map((r) => r!.toLowerCase()));
      const item = await raw.get(`${name}@${start}`);
      // Python left 3 (its failed incr is never undone); Troupe's undo leaves 2.
      assert.equal(bucketCase!.item_after!.value_utf8, "3");
      assert.deepEqual({ flags: item?.flags, value: item?.value.toString() }, { flags: 0, value: "2" });
      await raw.delete(`${name}@${start}`);
      return { value: undefined, crossed: false };
    });
  });
});
