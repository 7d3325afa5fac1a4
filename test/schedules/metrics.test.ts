import assert from "node:assert/strict";
import { after, test } from "node:test";
import { RedisBroker, Schedule, Scheduler, actor, getMetricsRegistry, scheduleStoreFor } from "troupe";
import { REDIS_URL, uniqueName } from "../support/env.js";
import { deleteNamespace, redisClient } from "../support/redis.js";
import { until } from "../support/wait.js";
import { SECOND } from "./fleet.js";

const namespace = uniqueName("sched-metrics");
const client = redisClient(REDIS_URL);
const broker = new RedisBroker(REDIS_URL, { namespace });
after(async () => {
  await broker.close();
  await deleteNamespace(client, namespace);
  client.disconnect();
});

async function counter(name: string, schedule: string): Promise<number> {
  const metric = (await getMetricsRegistry().getMetricsAsJSON()).find((m) => m.name === name);
  return (metric?.values ?? []).filter((v) => v.labels.schedule === schedule).reduce((sum, v) => sum + v.value, 0);
}

test("two schedulers on one schedule: fires counted once per tick, and the ticks missed before the first fire as misfires", async () => {
  const queue = uniqueName("metric-ticks");
  const ticked = actor(uniqueName("metric_ticked"), () => undefined, { queue });
  const schedule = new Schedule(ticked, { every: "1s" }, { name: uniqueName("metric-every-second") });
  // The last fired tick, as a fleet that went down five ticks ago left it.
  const previous = Math.floor(Date.now() / SECOND) * SECOND - 5 * SECOND;
  await client.hset(`${namespace}:schedules`, schedule.name, JSON.stringify({ tick: previous, firedAt: previous, by: "gone:1", messageId: "m" }));
  await broker.connect();
  const schedulers = [new Scheduler(scheduleStoreFor(broker), [schedule]), new Scheduler(scheduleStoreFor(broker), [schedule])];
  await Promise.all(schedulers.map((s) => s.start()));
  const fired = async () => JSON.parse((await client.hget(`${namespace}:schedules`, schedule.name))!) as { tick: number };
  const firstFired = await until(async () => ((await fired()).tick > previous ? (await fired()).tick : undefined), "the first fire");
  await until(async () => (await fired()).tick >= firstFired + 2 * SECOND, "two more fires");
  await Promise.all(schedulers.map((s) => s.stop()));

  const enqueued = (await client.hvals(`${namespace}:${queue}.msgs`)).map((body) => (JSON.parse(body) as { options: { schedule_tick: number } }).options.schedule_tick);
  assert.equal(new Set(enqueued).size, enqueued.length, "no tick doubled");
  assert.equal(await counter("troupe_schedule_fires_total", schedule.name), enqueued.length, "one fire counted per enqueued tick, across both schedulers");
  assert.equal(await counter("troupe_schedule_misfires_total", schedule.name), (firstFired - previous) / SECOND - 1, "the ticks between the recorded one and the first fire");
});
