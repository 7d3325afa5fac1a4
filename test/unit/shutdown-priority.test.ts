import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryBroker, Worker, setBroker } from "troupe";
import { EventLog } from "../support/events.js";
import { fixture } from "../support/env.js";

const modules = [fixture("basic")];
const actors = await import(modules[0]!);

async function startWorker(options: Partial<ConstructorParameters<typeof Worker>[1]> = {}) {
  const broker = setBroker(new MemoryBroker()) as MemoryBroker;
  const worker = new Worker(broker, { modules, threads: 1, concurrency: 2, ...options });
  await worker.start();
  return { broker, worker };
}

describe("graceful shutdown", () => {
  test("running messages finish and are acked; unstarted ones go back to the queue", async () => {
    const events = new EventLog();
    const { broker, worker } = await startWorker();
    try {
      await actors.nap.send("n1", 300);
      await actors.nap.send("n2", 300);
      await events.count("nap-start", 2);
      for (let i = 0; i < 5; i++) await actors.record.send(`r${i}`);
      await worker.stop(10_000);
      // Actor reports travel on a BroadcastChannel and may land just after stop() returns.
      await events.count("nap-end", 2);
      assert.equal(events.of("record").length, 0, "nothing new started after stop");
      assert.deepEqual(await broker.queueStats("default"), { queue: "default", ready: 5, delayed: 0, inFlight: 0, dead: 0 });
    } finally {
      events.close();
    }
  });

  test("past the shutdown timeout, unfinished messages are requeued, not acked", async () => {
    const events = new EventLog();
    const { broker, worker } = await startWorker();
    try {
      await actors.nap.send("long", 60_000);
      await events.count("nap-start", 1);
      await worker.stop(100);
      assert.equal(events.of("nap-end").length, 0);
      assert.deepEqual(await broker.queueStats("default"), { queue: "default", ready: 1, delayed: 0, inFlight: 0, dead: 0 });
    } finally {
      events.close();
    }
  });

  test("delayed messages held in memory are given back to the delay queue", async () => {
    const { broker, worker } = await startWorker();
    await actors.record.sendWithOptions({ args: ["later"], delay: 60_000 });
    await new Promise<void>((resolve) => {
      const check = async () => ((await broker.queueStats("default")).delayed === 1 ? resolve() : setImmediate(check));
      void check();
    });
    await worker.stop(1000);
    assert.deepEqual(await broker.queueStats("default"), { queue: "default", ready: 0, delayed: 1, inFlight: 0, dead: 0 });
  });
});

describe("priorities", () => {
  // As in Dramatiq, actor priority orders only what the worker has prefetched, hence the larger prefetch.
  test("lower actor priority runs first among messages waiting in the worker", async () => {
    const events = new EventLog();
    const { broker, worker } = await startWorker({ concurrency: 1, prefetch: 20, lookahead: 0 });
    try {
      await actors.nap.send("blocker", 200);
      await events.count("nap-start", 1);
      for (let i = 0; i < 3; i++) await actors.prioLow.send(`l${i}`);
      for (let i = 0; i < 3; i++) await actors.prioHigh.send(`h${i}`);
      await events.count("prio", 6);
      assert.deepEqual(events.of("prio").map((e) => e.id), ["h0", "h1", "h2", "l0", "l1", "l2"]);
      await broker.join("default");
    } finally {
      events.close();
      await worker.stop(1000);
    }
  });

  test("the memory broker delivers higher broker priority first", async () => {
    const broker = new MemoryBroker();
    for (const [id, priority] of [["a", 0], ["b", 5], ["c", 1], ["d", 5]] as const) {
      await broker.enqueue(actors.record.messageWithOptions({ args: [id], priority }));
    }
    const seen: string[] = [];
    const consumer = broker.consume("default", { prefetch: 10, onMessage: (m) => seen.push(m.message.args[0] as string) });
    await consumer.start();
    await new Promise((resolve) => queueMicrotask(() => resolve(undefined)));
    assert.deepEqual(seen, ["b", "d", "c", "a"]);
    await consumer.close();
  });
});

describe("messages sent ahead to a busy thread", () => {
  test("a message's time limit starts when it does, not while it waits behind another", async () => {
    const events = new EventLog();
    const { broker, worker } = await startWorker({ concurrency: 1, lookahead: 1 });
    try {
      await actors.nap.send("first", 400);
      await actors.nap.sendWithOptions({ args: ["second", 50], timeLimit: 250 });
      await broker.join("default");
      await events.count("nap-end", 2);
      assert.deepEqual(events.of("nap-end").map((e) => e.id), ["first", "second"]);
      assert.equal((await broker.deadLetters("default")).length, 0);
    } finally {
      events.close();
      await worker.stop(1000);
    }
  });
});

describe("work stealing", () => {
  test("a message sent ahead to a thread busy with a slow actor is taken back by a thread that ran out of work", async () => {
    const events = new EventLog();
    const { broker, worker } = await startWorker({ threads: 2, concurrency: 1, lookahead: 3 });
    try {
      await actors.nap.send("slow", 1500);
      await events.count("nap-start", 1);
      // Both threads have room for three more: some of these land behind the slow one.
      for (let i = 0; i < 6; i++) await actors.record.send(`quick-${i}`);
      await events.count("record", 6);
      assert.equal(events.of("nap-end").length, 0, "every quick message ran while the slow one was still running");
      await broker.join("default");
    } finally {
      events.close();
      await worker.stop(3000);
    }
  });
});
