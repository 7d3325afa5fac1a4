import { after, before } from "node:test";
import { MemoryBroker, Worker, setBroker, type Broker, type WorkerOptions } from "troupe";
import { fixture } from "./env.js";
import { EventLog } from "./events.js";

export const middlewareFixture = fixture("middleware");

export interface Running {
  broker: Broker;
  worker: Worker;
  events: EventLog;
  stop(): Promise<void>;
}

/**
 * A worker on `broker` (default: a fresh MemoryBroker made global) running the middleware fixture actors, with an
 * EventLog listening to what the actors report. The fixture is imported here too, as the CLI does, so that the
 * main thread's middleware can see actor options.
 */
export async function startWorker(options: Partial<WorkerOptions> & { broker?: Broker } = {}): Promise<Running> {
  await import(middlewareFixture);
  const broker = options.broker ?? new MemoryBroker();
  setBroker(broker);
  const events = new EventLog();
  const worker = new Worker(broker, { modules: [middlewareFixture], threads: 2, concurrency: 4, abortGrace: 200, ...options });
  await worker.start();
  return {
    broker,
    worker,
    events,
    async stop() {
      events.close();
      await worker.stop(5000);
    },
  };
}

export type Fixture = typeof import("../fixtures/middleware.js");

export async function actors(): Promise<Fixture> {
  return (await import(middlewareFixture)) as Fixture;
}

/** A worker started before a suite's tests and stopped after them; `run` and `a` are set once `before` ran. */
export function workerForSuite(options: Partial<WorkerOptions> = {}): { run: Running; a: Fixture } {
  const suite = {} as { run: Running; a: Fixture };
  before(async () => {
    suite.run = await startWorker(options);
    suite.a = await actors();
  });
  after(() => suite.run.stop());
  return suite;
}
