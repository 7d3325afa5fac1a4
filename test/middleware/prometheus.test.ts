import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { setBroker } from "troupe";
import { RedisBroker } from "../../worker/brokers/redis.js";
import { REDIS_URL, uniqueName } from "../support/env.js";
import { actors, middlewareFixture } from "../support/middleware.js";
import { CliProcess } from "../support/process.js";
import { freePort } from "../support/redis.js";
import { until } from "../support/wait.js";

/** Debian's Prometheus, installed on first use as the research notes describe (≈ 11 s). */
function ensurePrometheus(): void {
  if (spawnSync("sh", ["-c", "command -v prometheus"]).status === 0) return;
  const install = spawnSync("sh", ["-c", "apt-get install -y --no-install-recommends prometheus || (apt-get update && apt-get install -y --no-install-recommends prometheus)"], { stdio: "inherit" });
  assert.equal(install.status, 0, "apt-get install prometheus");
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

describe("the /metrics endpoint scraped by a real Prometheus", () => {
  const namespace = uniqueName("mwprom");
  const dir = mkdtempSync(join(tmpdir(), "troupe-prom-"));
  let metricsPort: number;
  let promPort: number;
  let cli: CliProcess;
  let prometheus: ChildProcess;
  let broker: RedisBroker;
  let redis: Redis;

  before(async () => {
    ensurePrometheus();
    [metricsPort, promPort] = [await freePort(), await freePort()];
    redis = new Redis(REDIS_URL);
    broker = new RedisBroker(REDIS_URL, { namespace });
    setBroker(broker);
    cli = new CliProcess(["worker", middlewareFixture, "--broker", REDIS_URL, "--processes", "2", "--threads", "2"], {
      TROUPE_REDIS_NAMESPACE: namespace,
      TROUPE_METRICS_PORT: String(metricsPort),
      TROUPE_METRICS_HOST: "127.0.0.1",
    });
    await cli.waitForLog((l) => l.msg === "worker started", "2 worker processes", 60_000, 1);
    writeFileSync(
      join(dir, "prometheus.yml"),
      `global: { scrape_interval: 1s, evaluation_interval: 1s }\nscrape_configs:\n  - job_name: troupe\n    static_configs: [{ targets: ['127.0.0.1:${metricsPort}'] }]\n`,
    );
    prometheus = spawn("prometheus", [`--config.file=${join(dir, "prometheus.yml")}`, `--storage.tsdb.path=${join(dir, "data")}`, `--web.listen-address=127.0.0.1:${promPort}`], { stdio: "ignore" });
  });

  after(async () => {
    prometheus?.kill("SIGTERM");
    if (prometheus && prometheus.exitCode === null) await once(prometheus, "exit");
    await cli?.stop();
    await broker.close();
    const keys = await redis.keys(`${namespace}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  async function query(expr: string): Promise<Sample[]> {
    const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(expr)}`).catch(() => undefined);
    if (!res?.ok) return [];
    const body = (await res.json()) as { data: { result: Sample[] } };
    return body.data.result;
  }

  async function valueOf(expr: string): Promise<number | undefined> {
    const [sample] = await query(expr);
    return sample ? Number(sample.value[1]) : undefined;
  }

  test("counters, the in-progress gauges, the duration histogram and the queue gauge match what was processed", async () => {
    const health = await fetch(`http://127.0.0.1:${metricsPort}/healthz`);
    assert.equal(health.status, 200);

    const a = await actors();
    await broker.enqueueMany([
      ...Array.from({ length: 20 }, (_, i) => a.identity.message(i)),
      ...Array.from({ length: 5 }, (_, i) => a.failOnce.message(i)),
      ...Array.from({ length: 3 }, (_, i) => a.flaky.message(`p${i}`, 1)),
    ]);
    await broker.join("default", { timeout: 30_000 });

    const expected: [string, number][] = [
      ['sum(dramatiq_messages_total{actor_name="mw_identity"})', 20],
      ['sum(dramatiq_message_errors_total{actor_name="mw_fail"})', 5],
      ['sum(dramatiq_message_rejects_total{actor_name="mw_fail"})', 5],
      ['sum(dramatiq_messages_total{actor_name="mw_flaky"})', 6],
      ['sum(dramatiq_message_errors_total{actor_name="mw_flaky"})', 3],
      ['sum(dramatiq_message_retries_total{actor_name="mw_flaky",queue_name="default.DQ"})', 3],
      ['sum(dramatiq_message_duration_milliseconds_count{queue_name="default"})', 31],
      ['sum(dramatiq_messages_inprogress)', 0],
      ['troupe_queue_messages{queue_name="default",state="dead"}', 5],
      ['troupe_queue_messages{queue_name="default",state="ready"}', 0],
    ];
    // The first scrape shows up after Prometheus's ≈ 5 s discovery throttle; then every second.
    await until(async () => (await valueOf(expected[0]![0])) === 20, "Prometheus to have scraped the processed messages", { timeout: 60_000, interval: 250 });
    await until(async () => (await valueOf(expected[expected.length - 2]![0])) === 5, "the queue gauge to show the dead letters", { timeout: 20_000, interval: 250 });
    for (const [expr, value] of expected) assert.equal(await valueOf(expr), value, expr);
    const buckets = await query('sum by (le) (dramatiq_message_duration_milliseconds_bucket{actor_name="mw_identity"})');
    assert.deepEqual(buckets.map((s) => s.metric.le!).sort((x, y) => parseFloat(x.replace("+Inf", "Infinity")) - parseFloat(y.replace("+Inf", "Infinity"))), ["5", "10", "25", "50", "75", "100", "250", "500", "750", "1000", "2500", "5000", "7500", "10000", "30000", "60000", "600000", "900000", "+Inf"]);
    const up = await query('up{job="troupe"}');
    assert.equal(up[0]?.value[1], "1");
  });
});
