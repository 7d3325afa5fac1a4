/**
 * Every metric the dashboards and alert rules read must be exported for real. A worker (`troupe worker`,
 * TROUPE_METRICS_PORT) runs against the loopback Redis, and an operator (`troupe operator --metrics-port`) reconciles a
 * WorkerPool on the fake API server, with that Redis as the pool's broker. Each is scraped until every name appears;
 * then a real Prometheus scrapes both and every dashboard query and recording rule must return data, which also
 * catches label names and matchers that nothing exports.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { RedisBroker } from "../../worker/brokers/redis.js";
import { Message } from "../../worker/message.js";
import type { FakeApiServer } from "../fake-apiserver/server.js";
import { installChartRbac } from "../support/chart-rbac.js";
import { cliPath, fixture, REDIS_URL, uniqueName } from "../support/env.js";
import { createNamespace, createSecret, customObjects, startFakeApiServer, workerPoolManifest } from "../support/operator.js";
import { deleteNamespace, freePort, redisClient } from "../support/redis.js";
import { until } from "../support/wait.js";
import { PrometheusServer } from "./prometheus.js";
import { dashboardQueries, metricNames, ruleQueries, substituteVariables, type Query } from "./promql.js";

const SIDES = {
  worker: ["dramatiq_", "troupe_queue_"],
  operator: ["troupe_operator_", "troupe_workerpool_"],
} as const;
type Side = keyof typeof SIDES;
const sideOf = (metric: string): Side | undefined => (Object.keys(SIDES) as Side[]).find((s) => SIDES[s].some((p) => metric.startsWith(p)));

const queries = (): Query[] => [...dashboardQueries(), ...ruleQueries()];
const recorded = new Set(ruleQueries().map((q) => q.record));
const namesIn = (q: Query) => metricNames(substituteVariables(q.expr)).filter((m) => !recorded.has(m));

/** Metric names read by the dashboards and rules, less the series the rules record themselves. */
const usedMetrics = (): string[] => [...new Set(queries().flatMap(namesIn))].sort();

/** A `troupe` CLI process whose output is kept for failure messages. */
class Cli {
  readonly child: ChildProcess;
  output = "";

  constructor(args: string[], env: NodeJS.ProcessEnv) {
    this.child = spawn(process.execPath, [cliPath, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    this.child.stdout!.on("data", (d: Buffer) => (this.output += d));
    this.child.stderr!.on("data", (d: Buffer) => (this.output += d));
  }

  assertRunning(): void {
    assert.ok(this.child.exitCode === null && this.child.signalCode === null, `exited:\n${this.output}`);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = once(this.child, "exit");
    this.child.kill("SIGTERM");
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 10_000);
    await exited;
    clearTimeout(timer);
  }
}

/** Sample names in a Prometheus text-format scrape (a histogram gives its _bucket, _sum and _count). */
async function scrape(target: string): Promise<Set<string>> {
  const text = await fetch(`http://${target}/metrics`).then((r) => r.text());
  return new Set(text.split("\n").flatMap((l) => (l && !l.startsWith("#") ? [/^[A-Za-z_:][\w:]*/.exec(l)?.[0] ?? ""] : [])));
}

const redisNamespace = uniqueName("shipping");
const queue = uniqueName("metrics");
const dir = mkdtempSync(join(tmpdir(), "troupe-shipping-"));
const targets = {} as Record<Side, string>;
const processes = {} as Record<Side, Cli>;
let fake: FakeApiServer;

before(async () => {
  const env = { TROUPE_REDIS_NAMESPACE: redisNamespace, TROUPE_LOG_LEVEL: "warning" };
  targets.worker = `127.0.0.1:${await freePort()}`;
  processes.worker = new Cli(["worker", "--processes", "1", "--threads", "2", fixture("shipping-metrics")], {
    ...env,
    TROUPE_BROKER_URL: REDIS_URL,
    TROUPE_METRICS_PORT: targets.worker.split(":")[1],
    SHIPPING_QUEUE: queue,
  });

  fake = await startFakeApiServer();
  const kc = fake.kubeConfig();
  // The operator runs as the chart's ServiceAccount under the chart's RBAC, as in a cluster: a metric path that
  // needs a permission the chart lacks fails here with the 403 a cluster would give.
  const kubeconfig = join(dir, "kubeconfig");
  writeFileSync(kubeconfig, (await installChartRbac(fake, { releaseNamespace: "troupe-system" })).exportConfig());
  const namespace = await createNamespace(kc, "shipping");
  await createSecret(kc, namespace, "broker", { url: REDIS_URL });
  await customObjects(kc).create("workerpools", namespace, workerPoolManifest("metrics", { queues: [queue] }));
  targets.operator = `127.0.0.1:${await freePort()}`;
  processes.operator = new Cli(["operator", "--kubeconfig", kubeconfig, "--metrics-port", targets.operator.split(":")[1], "--metrics-host", "127.0.0.1"], env);

  const broker = new RedisBroker(REDIS_URL, { namespace: redisNamespace });
  try {
    const send = (actorName: string) => new Message({ queueName: queue, actorName, args: [], kwargs: {}, options: {} });
    await broker.enqueueMany([send("shipping_succeed"), send("shipping_succeed"), send("shipping_fail")]);
    await broker.enqueue(send("shipping_succeed"), { delay: 300 });
  } finally {
    await broker.close();
  }
});

after(async () => {
  await Promise.all(Object.values(processes).map((p) => p.stop()));
  await fake?.stop();
  const client = redisClient(REDIS_URL);
  await deleteNamespace(client, redisNamespace);
  await client.quit();
  rmSync(dir, { recursive: true, force: true });
});

test("every metric the dashboards and rules read belongs to the worker or the operator", () => {
  assert.deepEqual(usedMetrics().filter((m) => !sideOf(m)), []);
});

for (const side of Object.keys(SIDES) as Side[]) {
  test(`a live ${side} exports every ${side} metric the dashboards and rules read`, async () => {
    const wanted = usedMetrics().filter((m) => sideOf(m) === side);
    assert.ok(wanted.length >= 7, wanted.join(", "));
    let missing = wanted;
    await until(
      async () => {
        processes[side].assertRunning();
        const names = await scrape(targets[side]).catch(() => new Set<string>());
        missing = wanted.filter((m) => !names.has(m));
        return missing.length === 0;
      },
      `every dashboard metric in the ${side}'s /metrics`,
      { timeout: 30_000, interval: 200 },
    ).catch((err: Error) => assert.fail(`${err.message}; missing: ${missing.join(", ")}\n${processes[side].output}`));
  });
}

test("Prometheus scraping both answers every dashboard query and recording rule with data", async () => {
  const checked = [...dashboardQueries(), ...ruleQueries().filter((q) => q.record)];
  const prometheus = new PrometheusServer();
  await prometheus.start(targets);
  try {
    let empty: Query[] = checked;
    await until(
      async () => {
        const results = await Promise.all(checked.map(async (q) => ((await prometheus.query(substituteVariables(q.expr))).length ? null : q)));
        empty = results.filter((q): q is Query => q !== null);
        return empty.length === 0;
      },
      "data for every query",
      { timeout: 40_000, interval: 500 },
    ).catch((err: Error) => assert.fail(`${err.message}; no data for:\n${empty.map((q) => `${q.source}: ${q.expr}`).join("\n")}`));
  } finally {
    await prometheus.stop();
  }
});
