import assert from "node:assert/strict";
import { test } from "node:test";
import { acksSince, countAck, interleavedRates, type AckBuckets } from "../../bench/stats.js";

test("interleavedRates warms each loop up, then alternates them in ten rounds of a tenth of the sends each", async () => {
  const calls: string[] = [];
  const step = (name: string) => async () => void calls.push(name);
  const rates = await interleavedRates([step("troupe"), step("raw")], 20, 60_000, 3);

  const warmup = ["troupe", "troupe", "troupe", "raw", "raw", "raw"];
  const rounds = Array.from({ length: 10 }, () => ["troupe", "troupe", "raw", "raw"]).flat();
  assert.deepEqual(calls, [...warmup, ...rounds]);
  assert.equal(rates.length, 2);
  for (const rate of rates) assert.ok(rate > 0 && Number.isFinite(rate));
});

test("interleavedRates ends each loop's round when its share of the budget is spent", async () => {
  let slowCalls = 0;
  // Each slow send takes 30 ms: with a 100 ms budget a round has 10 ms, so exactly one send per round.
  const slow = () => new Promise<void>((resolve) => setTimeout(() => resolve(void slowCalls++), 30));
  const fast = async () => undefined;
  const [slowRate, fastRate] = await interleavedRates([slow, fast], 1_000, 100);
  assert.equal(slowCalls, 10, "one slow send started in each of the ten rounds");
  assert.ok(slowRate! < 40 && fastRate! > slowRate!, `slow ${slowRate} msg/s, fast ${fastRate} msg/s`);
});

test("acks counted in buckets are counted again from a later moment, across processes, from the first whole bucket", () => {
  const a: AckBuckets = {};
  const b: AckBuckets = {};
  for (const at of [1_000, 1_004, 1_012, 1_025, 1_031]) countAck(a, at);
  for (const at of [1_019, 1_020, 1_040]) countAck(b, at);
  assert.deepEqual(acksSince([a, b], 1_015), { count: 4, start: 1_020 });
  assert.deepEqual(acksSince([a, b], 1_020), { count: 4, start: 1_020 });
  assert.deepEqual(acksSince([a, b], 0), { count: 8, start: 0 });
  assert.deepEqual(acksSince([a, b], 2_000), { count: 0, start: 2_000 });
});
