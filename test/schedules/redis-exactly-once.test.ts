import { after, describe, test } from "node:test";
import type { Redis } from "ioredis";
import { REDIS_URL, uniqueName } from "../support/env.js";
import { OwnRedisServer, deleteNamespace, freePort, redisClient } from "../support/redis.js";
import { Fleet, SECOND, assertEveryTick, electionRestart, nextSecond, redisQueueTicks } from "./fleet.js";

function redisFleet(client: Redis, namespace: string): Fleet {
  return new Fleet(client, namespace, redisQueueTicks(client, namespace, "ticks"));
}

describe("every-second schedules across three worker pods on Redis", () => {
  const fleets: Fleet[] = [];
  const client = redisClient(REDIS_URL);
  after(async () => {
    for (const fleet of fleets) {
      await fleet.kill();
      await deleteNamespace(client, fleet.namespace);
    }
    client.disconnect();
  });

  test("ten seconds enqueue exactly ten messages per schedule, none doubled", async () => {
    const fleet = redisFleet(client, uniqueName("sched-once"));
    fleets.push(fleet);
    await fleet.start(3, REDIS_URL, {});
    const first = nextSecond(Date.now());
    const last = first + 9 * SECOND;
    await fleet.firedThrough(last);
    assertEveryTick(await fleet.source.ticks(), first, last);
    await fleet.stop();
  });

  test("kill -9 of the pod that fired last loses no tick and doubles none", async () => {
    const fleet = redisFleet(client, uniqueName("sched-kill"));
    fleets.push(fleet);
    await fleet.start(3, REDIS_URL, {});
    const first = nextSecond(Date.now());
    await fleet.firedThrough(first);
    const record = (await fleet.lastFired("tick-skip"))!;
    await fleet.podOf(record.by).kill();
    const last = record.tick + 5 * SECOND;
    await fleet.firedThrough(last);
    assertEveryTick(await fleet.source.ticks(), first, last);
    await fleet.stop();
  });
});

describe("every-second schedules while their Redis restarts", () => {
  let server: OwnRedisServer | undefined;
  let fleet: Fleet | undefined;
  let client: Redis | undefined;
  after(async () => {
    await fleet?.kill();
    client?.disconnect();
    await server?.stop();
  });

  test("ticks before and after the restart fire once each; ticks of the outage are missed, or fired late within the grace window; none doubles", async () => {
    server = new OwnRedisServer(await freePort());
    await server.start();
    client = redisClient(server.url);
    client.on("error", () => undefined);
    fleet = redisFleet(client, uniqueName("sched-restart"));
    await electionRestart(fleet, server, server.url, {});
  });
});
