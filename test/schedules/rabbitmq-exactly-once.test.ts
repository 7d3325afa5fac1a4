import { after, describe, test } from "node:test";
import type { Redis } from "ioredis";
import { AMQP_URL, REDIS_URL, uniqueName } from "../support/env.js";
import { OwnRedisServer, deleteNamespace, freePort, redisClient } from "../support/redis.js";
import { until } from "../support/wait.js";
import { Fleet, SCHEDULES, SECOND, assertEveryTick, electionRestart, nextSecond, rabbitmqQueueTicks, type FireRecord } from "./fleet.js";

/**
 * The exactly-once tests on a RabbitMQ broker: the pods elect on the Redis of TROUPE_RATE_LIMITER_URL (its own
 * namespace per test) and the winner publishes on the shared RabbitMQ, in queues of the test's own.
 */
async function rabbitFleet(electionUrl: string, client: Redis, prefix: string): Promise<{ fleet: Fleet; env: Record<string, string> }> {
  const namespace = uniqueName(prefix);
  const env = { TEST_TICK_QUEUE: `${namespace}-ticks`, TEST_IDLE_QUEUE: `${namespace}-idle`, TROUPE_RATE_LIMITER_URL: electionUrl };
  const fleet = new Fleet(client, namespace, await rabbitmqQueueTicks(AMQP_URL, env.TEST_TICK_QUEUE, env.TEST_IDLE_QUEUE));
  return { fleet, env };
}

/**
 * The record of the latest tick once both schedules' messages of it arrived, early enough in its second that no
 * fire of the next tick is under way: a moment between ticks. (On RabbitMQ the election and the publish are two
 * systems, so a firer killed between winning a tick and the confirm loses it — see docs/schedules.md.)
 */
async function betweenTicks(fleet: Fleet): Promise<FireRecord> {
  return until(
    async () => {
      const now = Date.now();
      const tick = Math.floor(now / SECOND) * SECOND;
      if (now - tick > 600) return undefined;
      const ticks = await fleet.source.ticks();
      if (!SCHEDULES.every((name) => ticks[name]!.includes(tick))) return undefined;
      const record = await fleet.lastFired("tick-skip");
      return record?.tick === tick && Date.now() - tick < 700 ? record : undefined;
    },
    "a moment between two fired ticks",
    { timeout: 30_000, interval: 5 },
  );
}

describe("every-second schedules across three worker pods on RabbitMQ", () => {
  const fleets: Fleet[] = [];
  const client = redisClient(REDIS_URL);
  after(async () => {
    for (const fleet of fleets) {
      await fleet.kill();
      await fleet.source.close();
      await deleteNamespace(client, fleet.namespace);
    }
    client.disconnect();
  });

  test("ten seconds enqueue exactly ten messages per schedule, none doubled", async () => {
    const { fleet, env } = await rabbitFleet(REDIS_URL, client, "sched-amqp-once");
    fleets.push(fleet);
    await fleet.start(3, AMQP_URL, env);
    const first = nextSecond(Date.now());
    const last = first + 9 * SECOND;
    await fleet.firedThrough(last);
    assertEveryTick(await fleet.source.ticks(), first, last);
    await fleet.stop();
  });

  test("kill -9 of the pod that fired last, between ticks, loses no tick and doubles none", async () => {
    const { fleet, env } = await rabbitFleet(REDIS_URL, client, "sched-amqp-kill");
    fleets.push(fleet);
    await fleet.start(3, AMQP_URL, env);
    const first = nextSecond(Date.now());
    await fleet.firedThrough(first);
    const record = await betweenTicks(fleet);
    await fleet.podOf(record).kill();
    const last = record.tick + 5 * SECOND;
    await fleet.firedThrough(last);
    assertEveryTick(await fleet.source.ticks(), first, last);
    await fleet.stop();
  });
});

describe("every-second schedules on RabbitMQ while their election Redis restarts", () => {
  let server: OwnRedisServer | undefined;
  let fleet: Fleet | undefined;
  let client: Redis | undefined;
  after(async () => {
    await fleet?.kill();
    await fleet?.source.close();
    client?.disconnect();
    await server?.stop();
  });

  test("ticks before and after the restart fire once each; none doubles", async () => {
    server = new OwnRedisServer(await freePort());
    await server.start();
    client = redisClient(server.url);
    client.on("error", () => undefined);
    const made = await rabbitFleet(server.url, client, "sched-amqp-restart");
    fleet = made.fleet;
    await electionRestart(fleet, server, AMQP_URL, made.env);
  });
});
