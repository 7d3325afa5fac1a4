import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { badInputSpec, render, type BadInputSpec, type Rendered } from "../support/bad-messages.js";
import { startMemoryWorker, WorkerCluster } from "../support/chaos.js";
import type { Tally } from "../support/tally.js";
import { AMQP_URL, REDIS_URL, uniqueName } from "../support/env.js";
import { RawAmqp } from "../support/rabbitmq.js";
import { deleteNamespace, redisClient } from "../support/redis.js";
import { until } from "../support/wait.js";

/** What a batch of fuzzed deliveries must lead to: valid ones ran exactly once, invalid ones never ran. */
function assertRuns(inputs: Rendered[], tally: Tally): void {
  for (const input of inputs) {
    const runs = tally.counts.get(input.id) ?? 0;
    assert.equal(runs, input.valid ? 1 : 0, `${input.kind} delivery ${input.id} ran ${runs} times: ${input.raw.subarray(0, 300).toString()}`);
  }
}

const ranAll = (inputs: Rendered[], tally: Tally) => inputs.every((i) => !i.valid || tally.counts.has(i.id));

/** Counts per kind, for the diagnostics. */
function kinds(all: Rendered[]): string {
  const counts = new Map<string, number>();
  for (const input of all) counts.set(input.kind, (counts.get(input.kind) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${n} ${k}`).join(", ");
}

const batches = (options?: Parameters<typeof badInputSpec>[0]) => fc.array(badInputSpec(options), { minLength: 1, maxLength: 20 });

describe("chaos: fuzzed and malformed messages never stop a worker", () => {
  test("memory broker, in-process worker: each bad delivery is dead-lettered with a reason, valid ones run", async (t) => {
    const memory = await startMemoryWorker();
    const { broker, worker, queue } = memory;
    const all: Rendered[] = [];
    try {
      await fc.assert(
        fc.asyncProperty(batches({ utf8: false, maxBallast: 300_000 }), async (specs: BadInputSpec[]) => {
          const deadBefore = (await broker.deadLetters(queue)).length;
          const inputs = specs.map((spec) => render(spec, queue, `f${all.length}_${Math.random().toString(36).slice(2)}`));
          all.push(...inputs);
          for (const input of inputs) broker.enqueueRaw(queue, input.raw.toString("utf8"));
          const invalid = inputs.filter((i) => !i.valid).map((i) => i.raw.toString("utf8"));
          const dead = await until(async () => {
            const letters = await broker.deadLetters(queue);
            return letters.length >= deadBefore + invalid.length && ranAll(inputs, memory.tally()) ? letters.slice(deadBefore) : undefined;
          }, "every valid delivery to run and every invalid one to be dead-lettered");
          assert.deepEqual(dead.map((d) => d.raw).sort(), invalid.sort(), "exactly the invalid deliveries are dead-lettered");
          for (const letter of dead) assert.ok(letter.reason, `dead letter without a reason: ${letter.raw.slice(0, 300)}`);
          assertRuns(inputs, memory.tally());
        }),
        { numRuns: 100 },
      );
      const stats = await until(async () => {
        const now = await broker.queueStats(queue);
        return now.ready + now.inFlight === 0 ? now : undefined;
      }, "nothing left on the queue or in flight");
      assert.equal(stats.dead, all.filter((i) => !i.valid).length);
      t.diagnostic(`memory: ${all.length} fuzzed deliveries (${kinds(all)}); worker stats ${JSON.stringify(worker.stats)}`);
    } finally {
      await memory.stop();
    }
  });

  describe("Redis: raw writes into the queue's hash and list, read by a troupe worker process", () => {
    const namespace = uniqueName("chaos");
    const queue = uniqueName("fuzz");
    const client = redisClient(REDIS_URL);
    let cluster: WorkerCluster;
    before(async () => {
      cluster = new WorkerCluster({ broker: REDIS_URL, queue, processes: 1, threads: 2, env: { TROUPE_REDIS_NAMESPACE: namespace } });
      await cluster.waitForProcesses(1);
    });
    after(async () => {
      await cluster.kill();
      await deleteNamespace(client, namespace);
      client.disconnect();
    });

    test("each bad delivery lands in .XQ with its exact bytes and a reason; the worker process never restarts", async (t) => {
      const [workerPid] = cluster.processes();
      const key = `${namespace}:${queue}`;
      const all: Rendered[] = [];
      await fc.assert(
        fc.asyncProperty(batches(), async (specs: BadInputSpec[]) => {
          const inputs = specs.map((spec) => render(spec, queue, `r${all.length}_${Math.random().toString(36).slice(2)}`));
          all.push(...inputs);
          const write = client.multi();
          for (const input of inputs) write.hset(`${key}.msgs`, input.id, input.raw).rpush(key, input.id);
          await write.publish(`${namespace}:__wake__.${queue}`, "").exec();
          const invalid = inputs.filter((i) => !i.valid);
          await until(async () => {
            const scores = invalid.length ? await client.zmscore(`${key}.XQ`, ...invalid.map((i) => i.id)) : [];
            return scores.every((s) => s !== null) && ranAll(inputs, cluster.tally());
          }, "every valid delivery to run and every invalid one to reach .XQ", { timeout: 30_000, interval: 20 });
          if (invalid.length) {
            const bodies = await client.hmgetBuffer(`${key}.XQ.msgs`, ...invalid.map((i) => i.id));
            const reasons = await client.hmget(`${key}.XQ.reasons`, ...invalid.map((i) => i.id));
            invalid.forEach((input, n) => {
              assert.ok(bodies[n]?.equals(input.raw), `${input.kind} ${input.id}: dead letter keeps the exact bytes`);
              assert.ok(reasons[n], `${input.kind} ${input.id}: dead letter has a reason`);
            });
          }
          assertRuns(inputs, cluster.tally());
        }),
        { numRuns: 40 },
      );
      // Acks follow the runs: wait for them, then nothing may be left on the queue, in its hash or in flight.
      await until(async () => (await client.llen(key)) + (await client.hlen(`${key}.msgs`)) === 0, "the queue and its hash to empty");
      assert.deepEqual(cluster.processes(), [workerPid], "the same worker process handled everything");
      const reasons = new Set(Object.values(await client.hgetall(`${key}.XQ.reasons`)).map((r) => r.replace(/[:'"].*$/s, "")));
      t.diagnostic(`Redis: ${all.length} fuzzed deliveries (${kinds(all)}); reasons seen: ${[...reasons].sort().join(" | ")}`);
    });
  });

  describe("RabbitMQ: raw publishes to the queue, read by a troupe worker process", () => {
    const queue = uniqueName("fuzz");
    let raw: RawAmqp;
    let cluster: WorkerCluster;
    before(async () => {
      raw = await RawAmqp.open();
      cluster = new WorkerCluster({ broker: AMQP_URL, queue, processes: 1, threads: 2 });
      await cluster.waitForProcesses(1);
      await until(async () => {
        const channel = await raw.scratch();
        const ok = await channel.checkQueue(queue).then(() => true, () => false);
        await channel.close().catch(() => undefined);
        return ok;
      }, `the worker to declare ${queue}`, { timeout: 30_000, interval: 50 });
    });
    after(async () => {
      await cluster.kill();
      await raw.deleteQueues(queue);
      await raw.close();
    });

    test("each bad delivery lands in .XQ with its exact bytes; the worker process never restarts", async (t) => {
      const [workerPid] = cluster.processes();
      const all: Rendered[] = [];
      await fc.assert(
        fc.asyncProperty(batches(), async (specs: BadInputSpec[]) => {
          const inputs = specs.map((spec) => render(spec, queue, `a${all.length}_${Math.random().toString(36).slice(2)}`));
          all.push(...inputs);
          for (const input of inputs) raw.channel.sendToQueue(queue, input.raw, { persistent: true, messageId: input.id });
          const wanted = new Map(inputs.filter((i) => !i.valid).map((i) => [i.id, i]));
          const dead = new Map<string, { body: Buffer; reason: unknown }>();
          await until(async () => {
            for (let got = await raw.channel.get(`${queue}.XQ`, { noAck: true }); got; got = await raw.channel.get(`${queue}.XQ`, { noAck: true })) {
              dead.set(String(got.properties.messageId), { body: got.content, reason: got.properties.headers?.["x-first-death-reason"] });
            }
            return dead.size >= wanted.size && ranAll(inputs, cluster.tally());
          }, "every valid delivery to run and every invalid one to reach .XQ", { timeout: 30_000, interval: 20 });
          assert.deepEqual([...dead.keys()].sort(), [...wanted.keys()].sort(), "exactly the invalid deliveries are dead-lettered");
          for (const [id, letter] of dead) {
            assert.ok(letter.body.equals(wanted.get(id)!.raw), `${wanted.get(id)!.kind} ${id}: dead letter keeps the exact bytes`);
            assert.equal(letter.reason, "rejected", "RabbitMQ records the nack (the reason itself is in the worker's log)");
          }
          assertRuns(inputs, cluster.tally());
        }),
        { numRuns: 40 },
      );
      assert.deepEqual(cluster.processes(), [workerPid], "the same worker process handled everything");
      t.diagnostic(`RabbitMQ: ${all.length} fuzzed deliveries (${kinds(all)})`);
    });
  });
});
