import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import type { Redis } from "ioredis";
import { AMQP_URL, REDIS_URL, uniqueName } from "../support/env.js";
import { BrokerRelay } from "../support/rabbitmq.js";
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
 * fire of the next tick is under way: a moment between ticks.
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
  const relays: BrokerRelay[] = [];
  const client = redisClient(REDIS_URL);
  after(async () => {
    for (const relay of relays) await relay.stop();
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
    await fleet.podOf(record.by).kill();
    const last = record.tick + 5 * SECOND;
    await fleet.firedThrough(last);
    assertEveryTick(await fleet.source.ticks(), first, last);
    await fleet.stop();
  });

  test("kill -9 of the firer after it won a tick and before RabbitMQ received its publish: a survivor takes the claim over and the tick is enqueued once", async () => {
    // The pods reach RabbitMQ through a relay that the test holds from just after a tick until the firer of the
    // next one is dead: its publish has left it and can never arrive, and its claim is all that is left of it.
    const relay = new BrokerRelay();
    relays.push(relay);
    await relay.start();
    const { fleet, env } = await rabbitFleet(REDIS_URL, client, "sched-amqp-claim");
    fleets.push(fleet);
    await fleet.start(3, `amqp://guest:guest@127.0.0.1:${relay.port}`, env);
    const first = nextSecond(Date.now());
    await fleet.firedThrough(first);
    const connections = relay.connections;
    assert.ok(connections > 0 && connections % 3 === 0, `each of the three pods has as many connections through the relay (${connections} in all)`);
    const before = await betweenTicks(fleet);
    relay.hold();
    const tick = before.tick + SECOND;
    const claim = await until(
      async () => {
        const election = await fleet.election("tick-skip", tick);
        return election?.state === "claimed" ? election : undefined;
      },
      "the next tick claimed, its publish held",
      { timeout: 10_000, interval: 5 },
    );
    const firer = fleet.podOf(claim.by);
    await firer.kill();
    await until(() => relay.connections === connections - connections / 3, "the killed pod's connections closed, with what they sent");
    relay.release();
    const last = tick + 3 * SECOND;
    await fleet.firedThrough(last);
    assertEveryTick(await fleet.source.ticks(), first, last);
    const committed = await fleet.election("tick-skip", tick);
    assert.equal(committed?.state, "committed");
    assert.notEqual(committed.by, claim.by, "a survivor committed the tick");
    const at = new Date(tick).toISOString();
    const tookOver = fleet.pods.flatMap((pod) => pod.logs).find((l) => l.msg.startsWith("took over a tick") && l.schedule === "tick-skip" && l.tick === at);
    assert.equal(tookOver?.from, claim.by, "the survivor logged whose claim it took over");
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
