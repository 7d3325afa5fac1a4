import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import type { BenchResult } from "../../bench/report.js";
import { AMQP_URL, REDIS_URL, repoRoot } from "../support/env.js";

const run = promisify(execFile);

// Two threads per worker instead of eight: this checks the harness, and a worker with fewer threads boots faster.
test("npm run bench --quick measures every figure on both brokers and writes JSON and Markdown", async () => {
  const out = mkdtempSync(join(tmpdir(), "troupe-bench-"));
  try {
    const { stdout } = await run(process.execPath, [join(repoRoot, "dist", "bench", "run.js"), "--quick", "--out", out], {
      env: { ...process.env, BENCH_MESSAGES: "200", BENCH_LATENCY_SECONDS: "0.2", BENCH_WORKLOADS: "noop", BENCH_THREADS: "2", BENCH_REDIS_URL: REDIS_URL, BENCH_AMQP_URL: AMQP_URL },
      timeout: 120_000,
      maxBuffer: 10 * 2 ** 20,
    });
    const result = JSON.parse(readFileSync(join(out, "latest.json"), "utf8")) as BenchResult;
    assert.deepEqual(JSON.parse(readFileSync(join(out, `${result.date.slice(0, 10)}.json`), "utf8")), result);
    assert.equal(readFileSync(join(out, "latest.md"), "utf8"), stdout);

    assert.deepEqual(result.brokers.map((b) => b.broker), ["redis", "rabbitmq"]);
    assert.deepEqual(result.bullmq.map((b) => b.concurrency), [8, 50]);
    for (const peer of result.bullmq) assert.ok(peer.processing > 0, `BullMQ c=${peer.concurrency} measured`);
    for (const broker of result.brokers) {
      for (const figure of [broker.raw.singleEnqueue, broker.raw.batchedEnqueue, broker.raw.processing, broker.enqueue.single, broker.enqueue.batched]) {
        assert.ok(figure > 0 && Number.isFinite(figure), `${broker.broker}: every enqueue and ceiling figure is a positive rate`);
      }
      assert.equal(broker.idle.length, 1);
      assert.ok(broker.idle[0]!.rss.length === 1 && broker.idle[0]!.rss[0]! > 10 * 2 ** 20, `${broker.broker}: idle RSS read for the one worker process`);
      const [noop] = broker.workloads;
      assert.equal(broker.workloads.length, 1);
      assert.equal(noop!.workload, "noop");
      assert.ok(noop!.processing > 0);
      // The no-op figure's ceiling is the median of three raw runs made just before it.
      assert.equal(noop!.ceilingRuns?.length, 3);
      assert.equal(noop!.ceiling, [...noop!.ceilingRuns!].sort((a, b) => a - b)[1]);
      assert.ok(noop!.rssLoad.length === 1 && noop!.rssLoad[0]! > 0);
      // Every latency message was counted, and latencies are real durations (same clock across processes).
      assert.ok(noop!.latency.samples >= 10);
      assert.ok(noop!.latency.toStart.p50 > 0 && noop!.latency.toStart.p50 <= noop!.latency.toFinish.p50);
      assert.ok(noop!.latency.toStart.p99 >= noop!.latency.toStart.p50);
      // Half the capacity is offered: the drain rate, or what the broker takes in and hands out at once if lower.
      assert.ok(noop!.latency.capacity > 0 && noop!.latency.capacity <= noop!.processing);
      assert.equal(noop!.latency.offered, noop!.latency.capacity * 0.5);
      // A bare client's latency at the same offered rate is measured beside it.
      const bare = noop!.latencyCeiling!;
      assert.equal(bare.offered, noop!.latency.offered);
      assert.equal(bare.samples, noop!.latency.samples);
      assert.ok(bare.toStart.p50 > 0 && bare.toStart.p99 >= bare.toStart.p50);
    }
    // One row per figure, each Troupe figure beside a reference measured in the same run.
    assert.ok(stdout.includes("| Broker | Workers | Figure | Troupe | Reference (same run) | Ratio | Target |"));
    const processingRows = result.rows.filter((r) => r.figure === "processing, no-op");
    assert.equal(processingRows.length, 2);
    for (const row of processingRows) assert.match(row.ratio, /^\d+%$/);
    assert.ok(result.rows.some((r) => r.figure.endsWith("vs BullMQ") && /^\d+\.\d\d×$/.test(r.ratio)));
    const latencyRows = result.rows.filter((r) => r.figure.startsWith("latency, no-op"));
    assert.equal(latencyRows.length, 2);
    for (const row of latencyRows) assert.match(row.ratio, /^p99 \d+\.\d× raw$/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
