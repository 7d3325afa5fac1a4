import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type * as k8s from "@kubernetes/client-node";
import { RedisBroker, Schedule, Scheduler, actor, scheduleStoreFor } from "troupe";
import type { Operator } from "../../operator/operator.js";
import type { FakeApiServer } from "../fake-apiserver/server.js";
import { operatorBroker } from "../../operator/brokers/connections.js";
import { scheduleTarget } from "../../operator/resources/actor-schedules.js";
import { AMQP_URL, REDIS_URL, uniqueName } from "../support/env.js";
import { RawAmqp } from "../support/rabbitmq.js";
import { createSecret, customObjects, namespaceWithBroker, startFakeApiServer, startOperator, workerPoolManifest, type ApiObject } from "../support/operator.js";
import { deleteNamespace, redisClient } from "../support/redis.js";
import { until } from "../support/wait.js";

/** The operator's injected clock: real time shifted to `start`, so a test sits just before the instant it checks. */
function clockFrom(start: string): () => Date {
  const offset = Date.parse(start) - Date.now();
  return () => new Date(Date.now() + offset);
}

const namespace = uniqueName("actor-sched");
const client = redisClient(REDIS_URL);
/** The operator's brokers, a Redis one in the test's own namespace. */
const brokerFactory = (url: string) => (url.startsWith("redis:") ? new RedisBroker(url, { namespace }) : operatorBroker(url));

/** The ticks enqueued on `queue` by schedule `name`, in order (read from the Redis broker's message hash). */
async function ticks(queue: string, name: string): Promise<number[]> {
  const bodies = await client.hvals(`${namespace}:${queue}.msgs`);
  return bodies
    .map((body) => (JSON.parse(body) as { options: { schedule?: string; schedule_tick: number } }).options)
    .filter((o) => o.schedule === name)
    .map((o) => o.schedule_tick)
    .sort((a, b) => a - b);
}

function consecutive(list: number[], period: number): boolean {
  return list.every((t, i) => i === 0 || t - list[i - 1]! === period);
}

const actorManifest = (name: string, spec: Record<string, unknown>) => ({ apiVersion: "troupe.dev/v1alpha1", kind: "Actor", metadata: { name }, spec });

describe("Actor schedules fired by the operator on real Redis", () => {
  let fake: FakeApiServer;
  let kc: k8s.KubeConfig;
  let cr: ReturnType<typeof customObjects>;
  const operators: Operator[] = [];

  /** A namespace with a pool consuming a queue of its own, on Redis. */
  async function served(): Promise<{ ns: string; queue: string }> {
    const ns = await namespaceWithBroker(kc, REDIS_URL);
    const queue = uniqueName("sched_q");
    await cr.create("workerpools", ns, workerPoolManifest("pool", { queues: [queue] }));
    return { ns, queue };
  }

  before(async () => {
    fake = await startFakeApiServer();
    kc = fake.kubeConfig();
    cr = customObjects(kc);
  });
  after(async () => {
    for (const op of operators) await op.stop();
    await fake.stop();
    await deleteNamespace(client, namespace);
    client.disconnect();
  });

  test("cron in a time zone fires at the DST-corrected instant of the injected clock, every tick once, with status", async () => {
    // Paris springs forward on 28 March 2027 at 01:00Z: 02:30 does not exist, so 02:30 fires at 03:00 (01:00Z).
    const operator = await startOperator(fake, { brokerFactory, now: clockFrom("2027-03-28T00:59:57Z") });
    operators.push(operator);
    const { ns, queue } = await served();
    const nightly = uniqueName("nightly");
    const second = uniqueName("second");
    await cr.create("actors", ns, actorManifest("digest", {
      actorName: "send_digest",
      queue,
      schedules: [
        { name: nightly, cron: "30 2 * * *", tz: "Europe/Paris", args: ["nightly"], kwargs: { full: true } },
        { name: second, every: "1s" },
      ],
    }));
    const controlName = uniqueName("control");
    await cr.create("actors", ns, actorManifest("control", { actorName: "control", queue, schedules: [{ name: controlName, every: "1s" }] }));
    await until(async () => (await ticks(queue, nightly)).length === 1, "the nightly tick", { timeout: 10_000 });
    assert.deepEqual(await ticks(queue, nightly), [Date.parse("2027-03-28T01:00:00Z")]);
    const body = JSON.parse((await client.hvals(`${namespace}:${queue}.msgs`)).find((b) => b.includes(nightly))!) as { actor_name: string; args: unknown[]; kwargs: unknown };
    assert.equal(body.actor_name, "send_digest");
    assert.deepEqual([body.args, body.kwargs], [["nightly"], { full: true }]);

    const everySecond = await until(async () => {
      const list = await ticks(queue, second);
      return list.length >= 4 ? list : undefined;
    }, "four every-second ticks");
    assert.ok(consecutive(everySecond, 1000), `consecutive, none doubled: ${everySecond.join(", ")}`);

    const status = await until(async () => {
      const a = await cr.get("actors", ns, "digest");
      return a.status?.schedules?.find((s: ApiObject) => s.name === nightly)?.lastScheduleTime ? a.status : undefined;
    }, "status with the nightly tick");
    const entry = status.schedules.find((s: ApiObject) => s.name === nightly);
    assert.equal(entry.lastScheduleTime, "2027-03-28T01:00:00.000Z");
    assert.equal(entry.nextScheduleTime, "2027-03-29T00:30:00.000Z", "02:30 CEST the next day");
    assert.equal(entry.when, "cron 30 2 * * * (Europe/Paris)");
    assert.match(entry.store, new RegExp(`namespace ${namespace}`));
    assert.ok(status.lastScheduleTime >= "2027-03-28T01:00:00.000Z");
    assert.equal(status.conditions.find((c: ApiObject) => c.type === "Scheduled").reason, "Firing");
    assert.equal(status.observedGeneration, 1);

    // The definitions are in the workers' store, so `troupe schedules` lists them.
    const defs = await client.hgetall(`${namespace}:schedules.defs`);
    assert.equal(JSON.parse(defs[nightly]!).tz, "Europe/Paris");
    const fires = (await operator.metrics.registry.getSingleMetricAsString("troupe_schedule_fires_total")).split("\n").filter((l) => l.includes(`schedule="${second}"`));
    assert.equal(fires.length, 1, "counted on the operator's registry");

    await cr.delete("actors", ns, "digest");
    await until(async () => !(await client.hexists(`${namespace}:schedules.defs`, second)), "a deleted Actor's schedules forgotten in the store");
    const atDeletion = (await ticks(queue, second)).length;
    const control = (await ticks(queue, controlName)).length;
    await until(async () => (await ticks(queue, controlName)).length >= control + 2, "two more ticks of another Actor");
    assert.ok((await ticks(queue, second)).length <= atDeletion + 1, "nothing fired after the deletion but a tick already in flight");
  });

  test("suspend stops the ticks (kept as skipped, not fired late on resume even within the grace window); resume fires from the next tick", async () => {
    const operator = operators[0]!;
    assert.ok(operator.isLeading);
    const { ns, queue } = await served();
    const name = uniqueName("suspended");
    await cr.create("actors", ns, actorManifest("pausable", { actorName: "pausable", queue, schedules: [{ name, every: "1s", misfire: "late", graceSeconds: 60 }] }));
    await until(async () => (await ticks(queue, name)).length >= 2, "two ticks");
    await cr.patch("actors", ns, "pausable", { spec: { schedules: [{ name, every: "1s", misfire: "late", graceSeconds: 60, suspend: true }] } });
    const pausedAt = await until(async () => {
      const a = await cr.get("actors", ns, "pausable");
      return a.status?.schedules?.[0]?.suspended === true && a.status.observedGeneration === 2 ? (await ticks(queue, name)).length : undefined;
    }, "the suspend applied");
    assert.equal((await cr.get("actors", ns, "pausable")).status.schedules[0].nextScheduleTime, undefined, "no next tick while suspended");
    const skippedFrom = Number(await until(() => client.hget(`${namespace}:schedules.skipped`, name), "a suspended tick elected and skipped"));
    await until(async () => Number(await client.hget(`${namespace}:schedules.skipped`, name)) >= skippedFrom + 2000, "two more suspended ticks");
    const whileSuspended = await ticks(queue, name);
    assert.ok(whileSuspended.length <= pausedAt + 1, "at most the tick in flight when the suspend was applied");
    assert.ok(whileSuspended.every((t) => t < skippedFrom), "no tick fired from the first skipped one on");

    await cr.patch("actors", ns, "pausable", { spec: { schedules: [{ name, every: "1s", misfire: "late", graceSeconds: 60, suspend: false }] } });
    await until(async () => (await ticks(queue, name)).length > whileSuspended.length + 1, "ticks again after the resume");
    const lastSkipped = Number(await client.hget(`${namespace}:schedules.skipped`, name));
    const resumed = (await ticks(queue, name)).slice(whileSuspended.length);
    assert.ok(resumed.every((t) => t > lastSkipped), `no suspended tick fired late: ${resumed.join(", ")} after ${lastSkipped}`);
    assert.ok(consecutive(resumed, 1000));
  });

  test("a leader change neither doubles nor skips a tick: the new leader refuses the tick the old one fired, within its grace window, and fires the next", async () => {
    for (const op of operators.splice(0)) await op.stop();
    const now = clockFrom("2027-06-01T12:00:00Z");
    // The release namespace of the other operators here: the chart RBAC installed for them covers these too.
    const lease = { namespace: "troupe-system", name: uniqueName("sched-lease").toLowerCase().replace(/_/g, "-"), leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 100 };
    const a = await startOperator(fake, { brokerFactory, now, leaderElection: { ...lease, identity: "a" } });
    operators.push(a);
    await until(() => a.isLeading, "a leads");
    const b = await startOperator(fake, { brokerFactory, now, leaderElection: { ...lease, identity: "b" } });
    operators.push(b);
    const { ns, queue } = await served();
    const name = uniqueName("failover");
    // Every five seconds: the lease (2 s) changes hands between two ticks; the 30 s grace makes the new leader try
    // the old leader's last tick when it starts, which the store refuses.
    await cr.create("actors", ns, actorManifest("failover", { actorName: "failover", queue, schedules: [{ name, cron: "*/5 * * * * *", misfire: "late", graceSeconds: 30 }] }));
    const [first] = await until(async () => {
      const list = await ticks(queue, name);
      return list.length ? list : undefined;
    }, "a fires a tick", { timeout: 10_000 });
    await a.crash();
    await until(() => b.isLeading, "b takes over", { timeout: 10_000 });
    const list = await until(async () => {
      const l = await ticks(queue, name);
      return l.length >= 3 ? l : undefined;
    }, "two ticks after the first", { timeout: 20_000 });
    assert.deepEqual(list.slice(0, 3), [first!, first! + 5000, first! + 10_000], "each tick once, none skipped");
    const record = JSON.parse((await client.hget(`${namespace}:schedules`, name))!) as { by: string };
    assert.ok(record.by, "the record names the firer");
  });

  test("a schedule declared in code and in an Actor under one name fires once per tick", async () => {
    for (const op of operators.splice(0)) await op.stop();
    operators.push(await startOperator(fake, { brokerFactory }));
    const { ns, queue } = await served();
    const name = uniqueName("both");
    const broker = brokerFactory(REDIS_URL);
    const inCode = actor(uniqueName("both_actor"), () => undefined, { queue });
    const scheduler = new Scheduler(scheduleStoreFor(broker), [new Schedule(inCode, { every: "1s" }, { name })]);
    try {
      await broker.connect();
      await scheduler.start();
      await cr.create("actors", ns, actorManifest("both", { actorName: inCode.actorName, queue, schedules: [{ name, every: "1s" }] }));
      await until(async () => (await cr.get("actors", ns, "both")).status?.schedules?.[0]?.lastScheduleTime, "the operator fires it too");
      const from = (await ticks(queue, name)).length;
      const list = await until(async () => {
        const l = await ticks(queue, name);
        return l.length >= from + 4 ? l : undefined;
      }, "four more ticks");
      assert.equal(new Set(list).size, list.length, "no tick doubled");
      assert.ok(consecutive(list, 1000), "none skipped");
    } finally {
      await scheduler.stop();
      await broker.close();
    }
  });

  test("an invalid schedule is refused by the CRD when its shape is wrong, and reported in a condition when only the parser can tell", async () => {
    if (!operators.length) operators.push(await startOperator(fake, { brokerFactory }));
    const { ns, queue } = await served();
    const rejected = async (schedule: Record<string, unknown>, message: RegExp) =>
      assert.rejects(cr.create("actors", ns, actorManifest(uniqueName("bad").toLowerCase().replace(/_/g, "-"), { actorName: "bad", queue, schedules: [schedule] })), (e) => {
        const err = e as { code?: number; body?: string };
        assert.equal(err.code, 422);
        assert.match(String(err.body), message);
        return true;
      });
    await rejected({ cron: "every tuesday" }, /cron/);
    await rejected({ cron: "* * * * *", every: "1s" }, /either cron or every/);
    await rejected({ every: "1s", tz: "Europe/Paris" }, /tz applies to cron/);
    await rejected({ every: "1s", misfire: "late" }, /graceSeconds is required/);
    await rejected({ every: "soon" }, /every/);
    await rejected({ tz: "Paris, France", cron: "0 8 * * *" }, /tz/);

    await cr.create("actors", ns, actorManifest("parser", {
      actorName: "parser",
      queue,
      schedules: [{ name: uniqueName("minute61"), cron: "61 * * * *" }, { name: uniqueName("mars"), cron: "0 8 * * *", tz: "Mars/Olympus" }, { name: uniqueName("fine"), every: "1h" }],
    }));
    const condition = await until(async () => (await cr.get("actors", ns, "parser")).status?.conditions?.find((c: ApiObject) => c.type === "Scheduled"), "the Scheduled condition");
    assert.equal(condition.status, "False");
    assert.equal(condition.reason, "InvalidSchedule");
    assert.match(condition.message, /schedules\[0\].*61/);
    assert.match(condition.message, /schedules\[1\].*Mars\/Olympus/);
    const status = (await cr.get("actors", ns, "parser")).status;
    assert.deepEqual(status.schedules.map((s: ApiObject) => s.when), ["every 1h"], "the valid schedule still fires");
  });

  test("on RabbitMQ the ticks are elected on the pool's results Redis and published on RabbitMQ, each once", async () => {
    if (!operators.length) operators.push(await startOperator(fake, { brokerFactory }));
    const ns = await namespaceWithBroker(kc, AMQP_URL);
    await createSecret(kc, ns, "results", { url: REDIS_URL });
    const queue = uniqueName("sched_amqp");
    await cr.create("workerpools", ns, workerPoolManifest("rabbit", { queues: [queue], results: { secretRef: { name: "results" } } }));
    const name = uniqueName("amqp-every");
    const raw = await RawAmqp.open(AMQP_URL);
    // The election store of a RabbitMQ pool: the results Redis, in the workers' default namespace.
    const record = async () => JSON.parse((await client.hget("dramatiq:schedules", name)) ?? "null") as { tick: number } | null;
    try {
      await cr.create("actors", ns, actorManifest("rabbit", { actorName: "rabbit", queue, schedules: [{ name, every: "1s" }] }));
      const first = await until(record, "a first tick elected", { timeout: 10_000 });
      const last = await until(async () => ((await record())!.tick >= first.tick + 3000 ? (await record())!.tick : undefined), "three more ticks");
      const status = await until(async () => (await cr.get("actors", ns, "rabbit")).status?.schedules?.[0], "status");
      assert.match(status.store, /^redis:\/\/127\.0\.0\.1:6379\/0 \(namespace dramatiq\), publishing on amqp:\/\/guest:\*\*\*@/, "the password redacted");
      await cr.delete("actors", ns, "rabbit");
      await until(async () => !(await client.hexists("dramatiq:schedules.defs", name)), "the schedule forgotten");
      const published: number[] = [];
      for (let got = await raw.channel.get(queue, { noAck: true }); got; got = await raw.channel.get(queue, { noAck: true })) {
        published.push((JSON.parse(got.content.toString()) as { options: { schedule_tick: number } }).options.schedule_tick);
      }
      published.sort((a, b) => a - b);
      assert.equal(new Set(published).size, published.length, "no tick published twice");
      assert.ok(consecutive(published, 1000), published.join(", "));
      assert.ok(published[0]! <= first.tick && published.at(-1)! >= last, `every elected tick published: ${published.join(", ")}`);
    } finally {
      await raw.deleteQueues(queue);
      await raw.close();
      await client.hdel("dramatiq:schedules", name);
    }
  });
});

describe("scheduleTarget: where an Actor's ticks are elected", () => {
  const pool = (url: string, spec: Record<string, unknown> = {}) => workerPoolManifest("p", { broker: { secretRef: { name: "broker" } }, ...spec }) as never;
  const secrets = (values: Record<string, string>) => (name: string, key: string) => values[`${name}/${key}`];

  test("a Redis pool elects on its broker; a RabbitMQ pool on its rate-limiter Redis, else its results Redis, else nowhere", () => {
    assert.deepEqual(scheduleTarget(pool(""), secrets({ "broker/url": REDIS_URL })), { brokerUrl: REDIS_URL });
    const amqp = secrets({ "broker/url": AMQP_URL, "results/url": "redis://results:6379/0", "limits/url": "redis://limits:6379/0", "memo/url": "memcached://m:11211" });
    assert.deepEqual(scheduleTarget(pool("", { results: { secretRef: { name: "results" } } }), amqp), { brokerUrl: AMQP_URL, electionUrl: "redis://results:6379/0" });
    assert.deepEqual(
      scheduleTarget(pool("", { results: { secretRef: { name: "results" } }, env: [{ name: "TROUPE_RATE_LIMITER_URL", valueFrom: { secretKeyRef: { name: "limits", key: "url" } } }] }), amqp),
      { brokerUrl: AMQP_URL, electionUrl: "redis://limits:6379/0" },
    );
    assert.deepEqual(scheduleTarget(pool("", { env: [{ name: "TROUPE_RESULTS_URL", value: "redis://inline:6379/1" }] }), amqp), { brokerUrl: AMQP_URL, electionUrl: "redis://inline:6379/1" });
    assert.match((scheduleTarget(pool("", { results: { secretRef: { name: "memo" } } }), amqp) as { problem: string }).problem, /cannot elect a firer per tick: give it spec\.results/);
    assert.match((scheduleTarget(pool(""), secrets({})) as { problem: string }).problem, /Secret broker with key url not found/);
  });
});
