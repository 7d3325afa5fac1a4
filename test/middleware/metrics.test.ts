import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:net";
import { getMetricsRegistry, metricsPortFromEnv } from "troupe";
import { middlewareFixture, workerForSuite } from "../support/middleware.js";
import { CliProcess } from "../support/process.js";
import { until } from "../support/wait.js";

async function sample(name: string, labels: Record<string, string>): Promise<number> {
  const metric = (await getMetricsRegistry().getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as { value: number; labels: Record<string, unknown> }[];
  const found = values.find((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return found?.value ?? 0;
}

/** A histogram's `_sum` or `_count` series for `labels`. */
async function histogramPart(name: string, part: "sum" | "count", labels: Record<string, string>): Promise<number> {
  const metric = (await getMetricsRegistry().getMetricsAsJSON()).find((m) => m.name === name);
  const values = (metric?.values ?? []) as { value: number; metricName?: string; labels: Record<string, unknown> }[];
  const found = values.find((v) => v.metricName === `${name}_${part}` && Object.entries(labels).every(([k, l]) => v.labels[k] === l));
  return found?.value ?? 0;
}

describe("Prometheus middleware on the memory broker", () => {
  const suite = workerForSuite();

  test("processed, delayed and in-progress messages are counted with Dramatiq's labels", async () => {
    const labels = { queue_name: "default", actor_name: "mw_who_am_i" };
    const before = await sample("dramatiq_messages_total", labels);
    await suite.a.whoAmI.sendWithOptions({ args: ["delayed-metric"], delay: 300 });
    await until(async () => (await sample("dramatiq_delayed_messages_inprogress", { queue_name: "default.DQ", actor_name: "mw_who_am_i" })) === 1, "the delayed gauge to go up");
    await suite.run.events.waitFor((e) => e.some((x) => x.kind === "who_am_i" && x.tag === "delayed-metric"), "the delayed message to run");
    await suite.run.broker.join("default");
    assert.equal(await sample("dramatiq_delayed_messages_inprogress", { queue_name: "default.DQ", actor_name: "mw_who_am_i" }), 0);
    assert.equal(await sample("dramatiq_messages_total", labels), before + 1);
    assert.equal(await sample("dramatiq_messages_inprogress", labels), 0);
    assert.equal(await sample("dramatiq_message_duration_milliseconds", { ...labels, le: "+Inf" }), before + 1);
  });

  test("the queue gauge reports broker-side depth by state", async () => {
    await suite.a.whoAmI.sendWithOptions({ args: ["parked"], delay: 60_000 });
    await until(async () => (await sample("troupe_queue_messages", { queue_name: "default", state: "delayed" })) === 1, "the queue gauge to show the delayed message", { interval: 100, timeout: 10_000 });
  });
});

describe("the duration histogram on a one-thread worker", () => {
  const suite = workerForSuite({ threads: 1, concurrency: 1 });

  test("counts from when the actor starts, not the time a message waited behind others on its thread (Dramatiq's meaning)", async () => {
    const labels = { queue_name: "default", actor_name: "mw_holds_thread" };
    const sumBefore = await histogramPart("dramatiq_message_duration_milliseconds", "sum", labels);
    const holdMs = 40;
    const sent = 6;
    // Sent together: with the default lookahead they wait on the one thread, up to (sent - 1) × holdMs each.
    await Promise.all(Array.from({ length: sent }, () => suite.a.holdsThread.send(holdMs)));
    await suite.run.broker.join("default");
    await until(async () => (await histogramPart("dramatiq_message_duration_milliseconds", "count", labels)) === sent, "every message observed");
    const mean = ((await histogramPart("dramatiq_message_duration_milliseconds", "sum", labels)) - sumBefore) / sent;
    assert.ok(mean >= holdMs, `each observation covers the actor's run (${mean} ms)`);
    // Counting the wait would make the mean (1 + 2 + … + 6) / 6 × 40 = 140 ms.
    assert.ok(mean < 2 * holdMs, `the mean duration is ${mean} ms for a ${holdMs} ms actor`);
  });
});

describe("the metrics endpoint settings", () => {
  test("TROUPE_METRICS_PORT: default 9191, 0 or off disables, garbage is a clear error", () => {
    assert.equal(metricsPortFromEnv(undefined), 9191);
    assert.equal(metricsPortFromEnv("9300"), 9300);
    assert.equal(metricsPortFromEnv("0"), undefined);
    assert.equal(metricsPortFromEnv("off"), undefined);
    assert.throws(() => metricsPortFromEnv("http"), /TROUPE_METRICS_PORT must be a port number, "0" or "off"; got "http"/);
  });

  test("troupe worker on the memory broker serves /metrics and /healthz itself", async () => {
    const server = createServer().listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    const cli = new CliProcess(["worker", middlewareFixture, "--broker", "memory://", "--threads", "1"], { TROUPE_METRICS_PORT: String(port), TROUPE_METRICS_HOST: "127.0.0.1" });
    try {
      await cli.waitForLog((l) => l.msg === "worker started", "the worker to start");
      assert.equal(await (await fetch(`http://127.0.0.1:${port}/healthz`)).text(), "ok\n");
      const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      assert.match(body, /# TYPE dramatiq_messages_total counter/);
      assert.match(body, /troupe_queue_messages\{queue_name="default",state="ready"\} 0/);
      assert.equal(await cli.stop(), 0, "clean exit on SIGTERM");
    } finally {
      await cli.stop();
    }
  });
});
