import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ConnectionFailed, RabbitmqBroker, type Message } from "troupe";
import { BrokerConnections } from "../../operator/brokers/connections.js";
import { WorkerCluster, records } from "../support/chaos.js";
import { uniqueName } from "../support/env.js";
import { RabbitCluster, type ClusterNode } from "../support/own-rabbitmq.js";
import { freePort } from "../support/redis.js";
import { account } from "../support/tally.js";
import { until } from "../support/wait.js";

/** Settle every promise within `ms`, so a teardown step that hangs cannot keep the file running. */
async function bounded(what: string, ms: number, work: Promise<unknown>): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve(`${what} did not finish within ${ms} ms`), ms)));
  const outcome = await Promise.race([work.then(() => undefined, (err: Error) => `${what} failed: ${err.message}`), late]);
  clearTimeout(timer);
  return outcome;
}

describe("RabbitMQ cluster of three nodes", () => {
  let cluster: RabbitCluster;

  before(async () => {
    cluster = await RabbitCluster.start();
  });

  after(async () => {
    await cluster?.stop();
  });

  test("connects to any live node of the URL, and a start-up failure names every node tried", async (t) => {
    t.diagnostic(`three nodes booted and joined in ${(cluster.startMs / 1000).toFixed(1)} s`);
    const dead = [await freePort(), await freePort()];
    const broker = new RabbitmqBroker("amqp://guest:guest@127.0.0.1/", { hosts: [`127.0.0.1:${dead[0]}`, `127.0.0.1:${dead[1]}`, `127.0.0.1:${cluster.portOf("b")}`] });
    await broker.connect();
    await broker.close();

    const nowhere = new RabbitmqBroker(`amqp://guest:secret@127.0.0.1:${dead[0]},127.0.0.1:${dead[1]}/`);
    await assert.rejects(nowhere.connect(), (err: Error) => {
      assert.ok(err instanceof ConnectionFailed, String(err));
      for (const port of dead) assert.ok(err.message.includes(`127.0.0.1:${port}: connection refused`), err.message);
      assert.doesNotMatch(err.message, /secret/);
      return true;
    });
  });

  test("kill -9 of the node that leads the quorum queues and serves a worker, under producers and workers: none lost, depth still read", async (t) => {
    const total = 20_000;
    const idleDepth = 1000;
    const processes = 2;
    const queue = uniqueName("cluster_chaos");
    // A queue nobody consumes, led from the same node: its depth is known all through the outage.
    const idle = uniqueName("cluster_idle");
    const url = `${cluster.url}?queue_type=quorum`;
    const workers = new WorkerCluster({ broker: url, queue, processes, threads: 4 });
    // Three producers opened in a row start on three consecutive nodes of the URL: every node has one.
    const producers = [0, 1, 2].map(() => new RabbitmqBroker(url));
    const operator = new BrokerConnections();
    let victim: ClusterNode | undefined;
    let restarting: Promise<void> | undefined;
    try {
      await Promise.all(producers.map((p) => p.connect()));
      await producers[0]!.enqueueMany(records(idle, "idle", idleDepth));
      const workerPids = await workers.waitForProcesses(processes);
      victim = await until(
        async () => {
          const consumers = (await cluster.connectionNodes("a")).filter((c) => workerPids.some((pid) => c.name === `troupe consumer pid ${pid}`));
          return consumers.length === processes ? consumers[0]!.node : undefined;
        },
        "both worker processes to subscribe",
        { timeout: 60_000, interval: 200 },
      );
      // The queues were declared on other connections' nodes; lead them from the node the first worker consumes on.
      // A transfer can be refused while the target member catches up with the log: asked again until done.
      const led = [queue, `${queue}.DQ`, `${queue}.XQ`, idle];
      await until(
        async () => {
          const leaders = await cluster.leaders("a", "cluster_");
          const elsewhere = led.filter((name) => leaders.get(name) !== victim);
          if (elsewhere.length > 0) await cluster.moveLeaders(elsewhere, victim!);
          return elsewhere.length === 0;
        },
        `the queues led from ${victim}`,
        { timeout: 30_000, interval: 200 },
      );
      const onVictim = (await cluster.connectionNodes("a")).filter((c) => c.node === victim).map((c) => c.name);
      assert.ok(onVictim.includes(`troupe publisher pid ${process.pid}`), `a producer is on ${victim}: ${onVictim}`);

      const messages = records(queue, "c", total);
      const confirmed = new Set<string>();
      const raised: string[] = [];
      const reasons = new Map<string, number>();
      let next = 0;
      // 3 producers × 30 concurrent senders, each awaiting its own enqueue: publishes in flight on every node.
      const send = async (producer: RabbitmqBroker) => {
        for (let message: Message | undefined; (message = messages[next++]); ) {
          const id = message.args[0] as string;
          await producer.enqueue(message).then(
            () => confirmed.add(id),
            (err: Error) => {
              raised.push(id);
              const reason = `${err.name}: ${err.message.replace(/cluster_chaos_\w+/g, "q")}`;
              reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
            },
          );
        }
      };
      const sendStart = Date.now();
      const sending = Promise.all(producers.flatMap((p) => Array.from({ length: 30 }, () => send(p))));

      await until(() => confirmed.size >= total / 4, "a quarter of the messages confirmed", { timeout: 60_000, interval: 5 });
      const atKill = { confirmed: confirmed.size, run: workers.tally().counts.size, ms: Date.now() - sendStart };
      const killedAt = Date.now();
      await cluster.kill(victim);

      // The operator's reads (its BrokerConnections, 3 s timeout each) while the node is down: the idle queue keeps its depth.
      const depths: (number | string)[] = [];
      let outage = true;
      const reading = (async () => {
        while (outage) {
          try {
            const [stats] = await operator.queueStats(url, [idle]);
            depths.push(stats!.ready + stats!.inFlight);
          } catch (err) {
            depths.push((err as Error).message);
          }
        }
      })();

      const sendError = await bounded("sending", 90_000, sending);
      const sentMs = Date.now() - killedAt;
      outage = false;
      await reading;
      assert.equal(sendError, undefined);
      // The node comes back once every enqueue was confirmed or raised, all of them through the outage; the
      // workers drain meanwhile on the two nodes left.
      restarting = cluster.restart(victim);
      restarting.catch(() => undefined);
      const finished = await until(
        () => {
          const tally = workers.tally();
          return account(confirmed, tally).lost.length === 0 ? tally : undefined;
        },
        "every confirmed message to run",
        { timeout: 60_000, interval: 100 },
      ).catch(() => workers.tally());
      const drainedMs = Date.now() - killedAt;
      const { lost, duplicates, unexpected } = account(confirmed, finished);
      t.diagnostic(
        `${total} messages, ${confirmed.size} confirmed, ${raised.length} raised to the caller; node ${victim} killed ${atKill.ms} ms into sending, after ${atKill.confirmed} confirmed and ${atKill.run} run, ` +
          `leading the queues and serving [${onVictim.join(", ")}]; sends done ${sentMs} ms after the kill, all run after ${drainedMs} ms: ${lost.length} lost, ${duplicates} duplicates${reasons.size ? `; raised: ${[...reasons].map(([r, n]) => `${n} × ${r}`).join("; ")}` : ""}`,
      );
      const failed = depths.filter((d) => typeof d === "string");
      t.diagnostic(`operator depth reads of ${idle} during the outage: ${depths.filter((d) => typeof d === "number").join(", ")}; ${failed.length} failed${failed.length ? ` (${failed[0]})` : ""}`);
      assert.deepEqual(lost.slice(0, 10), [], `${lost.length} confirmed messages never ran`);
      // A send raised to its caller may still have reached the queue (its last publish was stored but its confirm
      // never came): at-least-once, the caller's retry makes a duplicate. Only a message nobody sent is wrong.
      const raisedIds = new Set(raised);
      const raisedButRan = unexpected.filter((id) => raisedIds.has(id));
      t.diagnostic(`${raisedButRan.length} of the ${raised.length} raised sends reached the queue anyway`);
      assert.deepEqual(unexpected.filter((id) => !raisedIds.has(id)), [], "every message that ran was sent");
      assert.equal(confirmed.size + raised.length, total);
      assert.ok(depths.some((d) => typeof d === "number"), "the operator read the depth during the outage");
      for (const depth of depths) if (typeof depth === "number") assert.equal(depth, idleDepth, "a quorum queue keeps its depth while its leader's node is down");
      await restarting;
      t.diagnostic(`node ${victim} back ${Date.now() - killedAt} ms after the kill`);
    } finally {
      const problems = await Promise.all([
        bounded("stopping the workers", 15_000, workers.kill()),
        bounded("closing the producers", 15_000, Promise.all(producers.map((p) => p.close()))),
        bounded("closing the operator's connections", 15_000, operator.close()),
        restarting ? bounded(`restarting node ${victim}`, 90_000, restarting) : undefined,
      ]);
      for (const problem of problems) if (problem) t.diagnostic(problem);
    }
  });
});
