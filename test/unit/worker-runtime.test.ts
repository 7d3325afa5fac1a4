import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { MemoryBroker, Message, TimeLimitExceeded, Worker, setBroker, type Middleware } from "troupe";
import { EventLog } from "../support/events.js";
import { fixture } from "../support/env.js";
import { until } from "../support/wait.js";

const modules = [fixture("basic")];

describe("worker runtime on the memory broker", () => {
  let broker: MemoryBroker;
  let worker: Worker;
  let events: EventLog;

  before(async () => {
    await import(modules[0]!);
    broker = new MemoryBroker();
    setBroker(broker);
    worker = new Worker(broker, { modules, threads: 2, concurrency: 2, abortGrace: 200 });
    await worker.start();
    events = new EventLog();
  });

  after(async () => {
    events.close();
    await worker.stop(5000);
  });

  test("runs actors in worker threads and acks them", async () => {
    const { add } = await import(modules[0]!);
    await add.send(1, 2);
    await events.count("add", 1);
    await broker.join("default");
    const stats = await broker.queueStats("default");
    assert.deepEqual({ ready: stats.ready, inFlight: stats.inFlight, dead: stats.dead }, { ready: 0, inFlight: 0, dead: 0 });
  });

  test("an unknown actor is dead-lettered with a reason", async () => {
    broker.enqueueRaw("default", new Message({ queueName: "default", actorName: "nope" }).encode());
    await broker.join("default");
    const dead = await broker.deadLetters("default");
    const entry = dead.find((d) => d.message?.actorName === "nope");
    assert.ok(entry, "dead letter present");
    assert.match(entry.reason ?? "", /no actor named "nope"/);
  });

  test("undecodable payloads are dead-lettered with a reason and the worker keeps going", async () => {
    broker.enqueueRaw("default", "{not json");
    broker.enqueueRaw("default", JSON.stringify({ queue_name: "default", actor_name: "add", args: [] }));
    const { record } = await import(modules[0]!);
    await record.send("after-garbage");
    await events.waitFor((e) => e.some((x) => x.kind === "record" && x.id === "after-garbage"), "record after garbage");
    const reasons = (await broker.deadLetters("default")).map((d) => d.reason);
    assert.ok(reasons.some((r) => /not valid JSON/.test(r ?? "")), `reasons: ${reasons}`);
    assert.ok(reasons.some((r) => /lacks the required key 'kwargs'/.test(r ?? "")), `reasons: ${reasons}`);
  });

  test("a thread killed by its actor is replaced and the next message runs", async () => {
    const { crash, record } = await import(modules[0]!);
    const threads = worker.readyThreads;
    await crash.send("c1");
    await events.count("crash", 1);
    await record.send("after-crash");
    await events.waitFor((e) => e.some((x) => x.kind === "record" && x.id === "after-crash"), "record after crash");
    // The crash's outcome is recorded when the pool sees the thread exit; only then is a replacement started.
    await until(async () => (await broker.deadLetters("default")).some((d) => d.message?.actorName === "crash"), "the crash to be dead-lettered");
    await until(() => worker.readyThreads === threads, "the crashed thread to be replaced");
  });

  test("a CPU-bound actor past its time limit is stopped and its thread replaced", async () => {
    const { spin, record } = await import(modules[0]!);
    let spinOutcome: (err: unknown) => void;
    const outcome = new Promise<unknown>((resolve) => (spinOutcome = resolve));
    const limit: Middleware = {
      beforeProcessMessage: (_b, proxy) => {
        if (proxy.actorName === "spin") proxy.timeLimit = 100;
      },
      afterProcessMessage: (_b, proxy, { exception }) => {
        if (proxy.actorName === "spin") spinOutcome(exception);
      },
    };
    broker.addMiddleware(limit);
    try {
      await spin.send("s1");
      const err = await outcome;
      assert.ok(err instanceof TimeLimitExceeded, `spin failed with ${err}`);
      for (let i = 0; i < 4; i++) await record.send(`after-spin-${i}`);
      await events.waitFor((e) => e.filter((x) => x.kind === "record" && String(x.id).startsWith("after-spin")).length === 4, "records after spin");
      await broker.join("default");
    } finally {
      broker.removeMiddleware(limit);
    }
  });

  test("delayed messages wait for their eta", async () => {
    const { record } = await import(modules[0]!);
    const sentAt = Date.now();
    await record.sendWithOptions({ args: ["delayed"], delay: 150 });
    await events.waitFor((e) => e.some((x) => x.kind === "record" && x.id === "delayed"), "delayed record");
    assert.ok(Date.now() - sentAt >= 150, "ran no earlier than its delay");
  });
});

test("a worker whose actor module fails to import in its threads rejects start and leaves no thread running", async () => {
  const broker = new MemoryBroker();
  const worker = new Worker(broker, { modules: [fixture("does-not-exist")], threads: 2 });
  await assert.rejects(worker.start(), /does-not-exist|Cannot find module/);
});
