import type { Broker } from "../broker.js";
import type { Message } from "../message.js";
import type { MessageProxy } from "../proxy.js";
import type { RegisteredActor } from "../registry.js";

/** What a worker exposes to middleware at boot and shutdown. */
export interface WorkerInfo {
  readonly queues: readonly string[];
  readonly threads: number;
  readonly concurrency: number;
}

/** The outcome of running an actor, as seen by `afterProcessMessage`. */
export interface ProcessOutcome {
  result?: unknown;
  exception?: unknown;
  /** How long the actor ran, from its start in a worker thread (not counting time waiting for the thread). */
  durationMs?: number;
}

/**
 * Dramatiq's middleware hooks. Every hook runs in the worker's main thread (or the producer's process for the
 * enqueue hooks) and may be async. `before*` hooks run in list order and a `SkipMessage` from
 * `beforeProcessMessage` stops the rest; `after*` hooks run in reverse order and their errors are logged, never
 * raised.
 */
export interface Middleware {
  /** Options this middleware reads from actors (documentation and validation). */
  readonly actorOptions?: readonly string[];

  afterDeclareActor?(broker: Broker, actor: RegisteredActor): void | Promise<void>;
  afterDeclareQueue?(broker: Broker, queue: string): void | Promise<void>;
  afterDeclareDelayQueue?(broker: Broker, queue: string): void | Promise<void>;

  beforeEnqueue?(broker: Broker, message: Message, delay: number | undefined): void | Promise<void>;
  afterEnqueue?(broker: Broker, message: Message, delay: number | undefined): void | Promise<void>;

  beforeDelayMessage?(broker: Broker, message: MessageProxy): void | Promise<void>;
  beforeProcessMessage?(broker: Broker, message: MessageProxy): void | Promise<void>;
  afterProcessMessage?(broker: Broker, message: MessageProxy, outcome: ProcessOutcome): void | Promise<void>;
  afterSkipMessage?(broker: Broker, message: MessageProxy): void | Promise<void>;

  beforeAck?(broker: Broker, message: MessageProxy): void | Promise<void>;
  afterAck?(broker: Broker, message: MessageProxy): void | Promise<void>;
  beforeNack?(broker: Broker, message: MessageProxy): void | Promise<void>;
  afterNack?(broker: Broker, message: MessageProxy): void | Promise<void>;

  beforeWorkerBoot?(broker: Broker, worker: WorkerInfo): void | Promise<void>;
  afterWorkerBoot?(broker: Broker, worker: WorkerInfo): void | Promise<void>;
  beforeWorkerShutdown?(broker: Broker, worker: WorkerInfo): void | Promise<void>;
  afterWorkerShutdown?(broker: Broker, worker: WorkerInfo): void | Promise<void>;

  afterWorkerThreadBoot?(broker: Broker, threadId: number): void | Promise<void>;
  beforeWorkerThreadShutdown?(broker: Broker, threadId: number): void | Promise<void>;
}

export type HookName = {
  [K in keyof Middleware]-?: NonNullable<Middleware[K]> extends (...args: never[]) => unknown ? K : never;
}[keyof Middleware];

export type HookArgs<K extends HookName> = NonNullable<Middleware[K]> extends (broker: Broker, ...rest: infer A) => unknown ? A : never;
