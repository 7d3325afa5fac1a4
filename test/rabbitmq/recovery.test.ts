import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BrokerConnectionError, BrokerError, ConnectionClosed, Message, RabbitmqBroker, type MessageProxy } from "troupe";
import { AMQP_URL, cliPath, fixture, uniqueName } from "../support/env.js";
import { BrokerRelay, RawAmqp, ackingConsumer, captureLogs, closeConnectionsOf, globalRabbitmqBroker, rabbitmqctl, startFixtureWorker, type FixtureWorker } from "../support/rabbitmq.js";
import { until } from "../support/wait.js";

const queue = uniqueName("rabbit_recovery");
process.env.TROUPE_TEST_RABBIT_QUEUE = queue;
const modules = [fixture("rabbitmq")];

function slowTallies(prefix: string, count: number, ms: number): Message[] {
  return Array.from({ length: count }, (_, i) => new Message({ queueName: queue, actorName: "slow_tally", args: [`${prefix}${i}`, ms] }));
}

/** Every id must have run at least once; duplicates are allowed (at-least-once) and reported. */
function assertAllRan(ids: string[], seen: string[]): number {
  const seenSet = new Set(seen);
  const missing = ids.filter((id) => !seenSet.has(id));
  assert.deepEqual(missing, [], `${missing.length} ids never ran`);
  return seen.length - seenSet.size;
}

async function assertDrained(broker: RabbitmqBroker): Promise<void> {
  await until(async () => {
    const stats = await broker.queueStats(queue);
    return stats.ready + stats.delayed + stats.dead === 0;
  }, "the queues to drain");
}

describe("RabbitMQ recovery", () => {
  let broker: RabbitmqBroker;
  let raw: RawAmqp;
  let dir: string;

  before(async () => {
    broker = await globalRabbitmqBroker();
    raw = await RawAmqp.open();
    dir = await mkdtemp(join(tmpdir(), "troupe-rabbit-"));
  });

  after(async () => {
    await broker.close();
    await raw.deleteQueues(queue);
    await raw.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("kill -9 of a worker process with unacked messages: they are redelivered and run, none lost", async (t) => {
    const tallyFile = join(dir, "tally.txt");
    const messages = slowTallies("k", 200, 10);
    await broker.enqueueMany(messages);
    const child = spawn(process.execPath, [cliPath, "worker", modules[0]!, "--broker", AMQP_URL, "--processes", "1", "--threads", "4"], {
      // No metrics endpoint: its fixed port may be taken by another test's worker running at the same time.
      env: { ...process.env, TROUPE_TEST_TALLY_FILE: tallyFile, TROUPE_LOG_LEVEL: "error", TROUPE_METRICS_PORT: "off" },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr!.on("data", (chunk) => (stderr += chunk));
    const exited = once(child, "exit");
    const lines = async () => (await readFile(tallyFile, "utf8").catch(() => "")).split("\n").filter(Boolean);
    try {
      const early = await until(async () => {
        const seen = await lines();
        return seen.length >= 40 ? seen : undefined;
      }, "the worker process to run 40 messages", { timeout: 30_000, interval: 20 });
      const victim = Number(early.at(-1)!.split(" ")[1]);
      process.kill(victim, "SIGKILL");
      const all = await until(async () => {
        const seen = await lines();
        return new Set(seen.map((l) => l.split(" ")[0])).size >= messages.length ? seen : undefined;
      }, "every message to run after the kill", { timeout: 60_000, interval: 50 }).catch((err: Error) => {
        throw new Error(`${err.message}; the worker CLI wrote: ${stderr.slice(-3000)}`);
      });
      const pids = new Set(all.map((l) => l.split(" ")[1]));
      assert.ok(pids.size >= 2, "a restarted process finished the work");
      const duplicates = assertAllRan(messages.map((m) => m.args[0] as string), all.map((l) => l.split(" ")[0]!));
      t.diagnostic(`${messages.length} messages, 1 kill -9, ${duplicates} duplicates, 0 lost`);
      await assertDrained(broker);
    } finally {
      child.kill("SIGTERM");
      let timer: NodeJS.Timeout | undefined;
      const stopped = await Promise.race([exited.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), 3_000)))]);
      clearTimeout(timer);
      if (!stopped) {
        // Shutdown is the CLI's business, not this test's: report it and clean up.
        t.diagnostic("the worker CLI did not exit within 3 s of SIGTERM; killing it");
        for (const pid of new Set((await lines()).map((l) => Number(l.split(" ")[1])))) {
          try {
            process.kill(pid, "SIGKILL");
          } catch {
            // already gone
          }
        }
        child.kill("SIGKILL");
        await exited;
      }
    }
    assert.doesNotMatch(stderr, /guest:guest/, "the CLI never prints the password");
  });

  test("a publish during an outage is confirmed once the broker is back, or rejected after publishTimeout", async () => {
    const relay = new BrokerRelay();
    await relay.start();
    const url = `amqp://guest:guest@127.0.0.1:${relay.port}/`;
    const impatient = new RabbitmqBroker(url, { publishTimeout: 300, maxReconnectDelay: 100 });
    const patient = new RabbitmqBroker(url, { maxReconnectDelay: 100 });
    const tally = (id: string) => new Message({ queueName: queue, actorName: "tally", args: [id] });
    try {
      await Promise.all([impatient.connect(), patient.connect()]);
      await patient.enqueue(tally("before"));
      await relay.stop();
      await assert.rejects(impatient.enqueue(tally("refused")), (err: Error) => err instanceof ConnectionClosed && /could not publish/.test(err.message));
      const waiting = patient.enqueue(tally("during"));
      await relay.start();
      await waiting;
      assert.deepEqual(await raw.drainIds(queue), ["before", "during"]);
    } finally {
      await Promise.all([impatient.close(), patient.close()]);
      await relay.stop();
    }
  });

  test("a publish RabbitMQ never confirms is rejected at publishTimeout, not sent again", async () => {
    const relay = new BrokerRelay();
    await relay.start();
    const silent = new RabbitmqBroker(`amqp://guest:guest@127.0.0.1:${relay.port}/`, { publishTimeout: 400 });
    try {
      await broker.purge(queue);
      await silent.connect();
      await silent.enqueue(new Message({ queueName: queue, actorName: "tally", args: ["declared"] }));
      relay.pause();
      await assert.rejects(
        silent.enqueue(new Message({ queueName: queue, actorName: "tally", args: ["unconfirmed"] })),
        (err: Error) => err instanceof BrokerConnectionError && !(err instanceof ConnectionClosed) && /did not confirm .* within 400 ms/.test(err.message),
      );
      relay.resume();
      // Once the broker answers again the written message arrives, once: the caller decides whether to send it again.
      await until(async () => (await broker.queueStats(queue)).ready === 2, "both messages on the queue");
    } finally {
      await silent.close();
      await relay.stop();
      await broker.purge(queue);
    }
  });

  test("a publish RabbitMQ refuses (basic.nack) is sent again until it is taken, or rejected after publishTimeout", async () => {
    // A full queue that refuses publishes (a policy, so that the queue's own arguments stay Dramatiq's) nacks the
    // way a quorum queue without a leader does while a node is down.
    const full = uniqueName("rabbit_nack");
    await rabbitmqctl("set_policy", "--apply-to", "queues", full, `^${full}$`, JSON.stringify({ "max-length": 1, overflow: "reject-publish" }));
    const impatient = new RabbitmqBroker(AMQP_URL, { publishTimeout: 300 });
    const patient = new RabbitmqBroker(AMQP_URL);
    const tally = (id: string) => new Message({ queueName: full, actorName: "tally", args: [id] });
    try {
      await patient.enqueue(tally("first"));
      await assert.rejects(impatient.enqueue(tally("refused")), (err: Error) => err instanceof BrokerError && !(err instanceof BrokerConnectionError) && /within 300 ms: RabbitMQ refused the message .*basic\.nack/.test(err.message));
      // Refused until there is room: sent again while the queue is full, taken once it is not.
      const lines: string[] = [];
      await captureLogs(lines, async () => {
        const waiting = patient.enqueue(tally("second"));
        await until(() => lines.some((l) => l.includes("publishing again") && l.includes("basic.nack") && l.includes(full)), "the second publish to be refused and sent again");
        assert.deepEqual(await raw.drainIds(full), ["first"]);
        await waiting;
      });
      assert.deepEqual(await raw.drainIds(full), ["second"]);
    } finally {
      await Promise.all([impatient.close(), patient.close()]);
      await rabbitmqctl("clear_policy", full);
      await raw.deleteQueues(full);
    }
  });

  test("a consumer cut off from the broker reconnects with backoff once it is back, and gets every message", async () => {
    const relay = new BrokerRelay();
    await relay.start();
    const cut = new RabbitmqBroker(`amqp://guest:guest@127.0.0.1:${relay.port}/`, { maxReconnectDelay: 100 });
    try {
      await cut.connect();
      const { consumer, delivered, lost } = await ackingConsumer(cut, queue, 20);
      const messages = slowTallies("o", 200, 0);
      await broker.enqueueMany(messages.slice(0, 100));
      await until(() => delivered.length >= 20, "the first deliveries");
      await relay.stop();
      await until(() => lost() >= 1, "the consumer to notice the outage");
      await broker.enqueueMany(messages.slice(100));
      await relay.start();
      await until(() => messages.every((m) => delivered.includes(m.args[0] as string)), "every message after the outage", { timeout: 30_000 });
      await consumer.close();
    } finally {
      await cut.close();
      await relay.stop();
    }
    await assertDrained(broker);
  });

  test("an ack for a delivery of a lost channel is ignored with a warning and the message comes again", async () => {
    const deliveries: MessageProxy[] = [];
    let lost = 0;
    const consumer = broker.consume(queue, { prefetch: 1, onMessage: (proxy) => deliveries.push(proxy), onConnectionLost: () => lost++ });
    await consumer.start();
    try {
      const [sent] = await broker.enqueueMany(slowTallies("stale", 1, 0));
      await until(() => deliveries.length === 1, "the first delivery");
      await closeConnectionsOf(process.pid);
      await until(() => lost === 1, "the consumer to notice");
      const lines: string[] = [];
      await captureLogs(lines, () => consumer.ack(deliveries[0]!));
      assert.ok(lines.some((l) => l.includes("ack ignored") && l.includes(sent!.messageId)), `a warning names the message: ${lines}`);
      await until(() => deliveries.length === 2, "the redelivery");
      assert.equal(deliveries[1]!.messageId, sent!.messageId);
      assert.ok(deliveries[1]!.redelivered, "flagged as redelivered");
      await consumer.ack(deliveries[1]!);
      await assertDrained(broker);
    } finally {
      await consumer.close();
    }
  });

  describe("an in-process worker", () => {
    let running: FixtureWorker;
    before(async () => (running = await startFixtureWorker(broker, { threads: 4 })));

    after(() => running.stop());

    test("force-closed connections mid-run: the worker and the publisher recover; nothing is lost", async (t) => {
      const first = slowTallies("c", 400, 5);
      await broker.enqueueMany(first);
      await running.events.count("tally", 50);
      const closed = await closeConnectionsOf(process.pid);
      assert.ok(closed >= 2, `closed ${closed} connections (publisher and consumer)`);
      // Published while the connections are down or coming back: confirmed once they are back, never dropped.
      const second = slowTallies("r", 100, 5);
      await broker.enqueueMany(second);
      const ids = [...first, ...second].map((m) => m.args[0] as string);
      await running.events.waitFor((e) => new Set(e.filter((x) => x.kind === "tally").map((x) => x.id)).size >= ids.length, "every message to run", 60_000);
      const duplicates = assertAllRan(
        ids,
        running.events.of("tally").map((e) => e.id as string),
      );
      t.diagnostic(`500 messages, connections closed once, ${duplicates} duplicates, 0 lost`);
      await assertDrained(broker);
    });
  });
});
