import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import type { Redis } from "ioredis";
import { AMQP_URL, REDIS_URL, uniqueName } from "../support/env.js";
import { BrokerRelay } from "../support/rabbitmq.js";
import { OwnRedisServer, deleteNamespace, freePort, redisClient } from "../support/redis.js";
import { until } from "../support/wait.js";
import { Fleet, SCHEDULES, SECOND, assertEveryTick, electionRestart, nextSecond, rabbitmqQueueTicks, range, type DeliveredTickSource, type FireRecord } from "./fleet.js";

/**
 * The exactly-once tests on a RabbitMQ broker: the pods elect on the Redis of TROUPE_RATE_LIMITER_URL (its own
 * namespace per test) and the winner publishes on the shared RabbitMQ, in queues of the test's own.
 */
async function rabbitFleet(electionUrl: string, client: Redis, prefix: string): Promise<{ fleet: Fleet; env: Record<string, string>; source: DeliveredTickSource }> {
  const namespace = uniqueName(prefix);
  const env = { TEST_TICK_QUEUE: `${namespace}-ticks`, TEST_IDLE_QUEUE: `${namespace}-idle`, TROUPE_RATE_LIMITER_URL: electionUrl };
  const source = await rabbitmqQueueTicks(AMQP_URL, env.TEST_TICK_QUEUE, env.TEST_IDLE_QUEUE);
  return { fleet: new Fleet(client, namespace, source), env, source };
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

/**
 * Three pods that reach RabbitMQ through `amqp`, a relay the test holds from a moment between ticks until the
 * process that claimed tick-skip's next tick is dead: its publish leaves it and never arrives. With `election`,
 * a relay the pods reach their election Redis through, the test instead holds `election` once the tick is claimed
 * and then lets the publish through: RabbitMQ has the tick, and the firer's commit never arrives. Either way the
 * firer's pod is then `kill -9`ed, and once its connections closed the survivors' bytes are let through.
 * Resolves to the first tick fired, the tick and its claim.
 */
async function killHeldFirer(fleet: Fleet, source: DeliveredTickSource, env: Record<string, string>, amqp: BrokerRelay, election?: BrokerRelay): Promise<{ first: number; tick: number; claim: { by: string } }> {
  const relays = election ? [amqp, election] : [amqp];
  await fleet.start(3, `amqp://guest:guest@127.0.0.1:${amqp.port}`, env);
  const first = nextSecond(Date.now());
  await fleet.firedThrough(first);
  const connections = relays.map((relay) => relay.connections);
  assert.ok(connections.every((n) => n > 0 && n % 3 === 0), `each of the three pods has as many connections through each relay (${connections.join(", ")} in all)`);
  const before = await betweenTicks(fleet);
  amqp.hold();
  const tick = before.tick + SECOND;
  const claim = await until(
    async () => {
      const state = await fleet.election("tick-skip", tick);
      return state?.state === "claimed" ? state : undefined;
    },
    "the next tick claimed, its publish held",
    { timeout: 10_000, interval: 5 },
  );
  if (election) {
    election.hold();
    amqp.release();
    await until(() => source.messageIds("tick-skip", tick).length > 0, "the firer's publish delivered, its commit held");
  }
  await fleet.podOf(claim.by).kill();
  await until(() => relays.every((relay, i) => relay.connections === connections[i]! - connections[i]! / 3), "the killed pod's connections closed, with what they sent");
  for (const relay of relays) relay.release();
  return { first, tick, claim };
}

/** The survivor that took `claim` of tick-skip's `tick` over logged it, naming the holder it replaced. */
function assertTakenOver(fleet: Fleet, tick: number, claim: { by: string }): void {
  const at = new Date(tick).toISOString();
  const tookOver = fleet.pods.flatMap((pod) => pod.logs).find((l) => l.msg.startsWith("took over a tick") && l.schedule === "tick-skip" && l.tick === at);
  assert.equal(tookOver?.from, claim.by, "the survivor logged whose claim it took over");
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
    const relay = new BrokerRelay();
    relays.push(relay);
    await relay.start();
    const { fleet, env, source } = await rabbitFleet(REDIS_URL, client, "sched-amqp-claim");
    fleets.push(fleet);
    const { first, tick, claim } = await killHeldFirer(fleet, source, env, relay);
    const last = tick + 3 * SECOND;
    await fleet.firedThrough(last);
    assertEveryTick(await fleet.source.ticks(), first, last);
    const committed = await fleet.election("tick-skip", tick);
    assert.equal(committed?.state, "committed");
    assert.notEqual(committed.by, claim.by, "a survivor committed the tick");
    assertTakenOver(fleet, tick, claim);
    await fleet.stop();
  });

  test("kill -9 of the firer after RabbitMQ received its publish and before its commit reached Redis: the tick is delivered twice, with one message_id", async () => {
    const redis = new URL(REDIS_URL);
    const amqp = new BrokerRelay();
    const election = new BrokerRelay(undefined, { host: "127.0.0.1", port: Number(redis.port || 6379) });
    relays.push(amqp, election);
    await amqp.start();
    await election.start();
    const { fleet, env, source } = await rabbitFleet(`redis://127.0.0.1:${election.port}${redis.pathname}`, client, "sched-amqp-commit");
    fleets.push(fleet);
    const { first, tick, claim } = await killHeldFirer(fleet, source, env, amqp, election);
    const last = tick + 3 * SECOND;
    await fleet.firedThrough(last);
    const ticks = await source.ticks();
    const ids = source.messageIds("tick-skip", tick);
    assert.equal(ids.length, 2, "the firer's publish and the survivor's");
    assert.equal(ids[0], ids[1], "both copies carry the tick's message_id");
    for (const name of SCHEDULES) {
      assert.deepEqual([...new Set(ticks[name])].sort((a, b) => a - b).filter((t) => t >= first && t <= last), range(first, last), `${name}: every tick delivered`);
      // Only the tick the killed pod was publishing can come twice (tick-grace's too, if that pod won it as well).
      for (const t of range(first, last)) {
        const copies = source.messageIds(name, t);
        assert.ok(copies.length === 1 || (t === tick && copies.length === 2 && copies[0] === copies[1]), `${name} tick ${t}: ${copies.join(",")}`);
      }
    }
    assertTakenOver(fleet, tick, claim);
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
