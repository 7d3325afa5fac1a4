import { MiddlewareError, QueueJoinTimeout, TroupeError } from "./errors.js";
import { getLogger, messageFields } from "./logging.js";
import { Message } from "./message.js";
import type { MessageProxy } from "./proxy.js";
import { dqName, qName } from "./queues.js";
import { defaultRegistry, type ActorRegistry, type RegisteredActor } from "./registry.js";

/** Depth of one canonical queue, as `troupe queues` and the operator see it. */
export interface QueueStats {
  queue: string;
  /** Messages waiting in `q`. */
  ready: number;
  /** Messages waiting in `q.DQ`, whether fetched (held until their eta) or not. */
  delayed: number;
  /** Messages fetched from `q` and not yet acked or nacked. */
  inFlight: number;
  /** Messages in the dead-letter queue `q.XQ`. */
  dead: number;
}

/** A dead-lettered message as a broker can list it. */
export interface DeadLetter {
  /** The stored body, exactly as it was on the queue. */
  raw: string;
  /** The decoded message, when the body decodes. */
  message?: Message;
  /** Why it was dead-lettered, where the broker keeps it. */
  reason?: string;
  /** When it was dead-lettered (ms), where the broker keeps it. */
  deadAt?: number;
}

/** A payload a consumer could not decode; the consumer has already dead-lettered it. */
export interface UndecodableDelivery {
  queue: string;
  raw: string | Uint8Array;
  reason: string;
}

export interface ConsumeOptions {
  /** Most deliveries outstanding (handed out, not yet acked, nacked or requeued) at once. */
  prefetch: number;
  /** Called for each decoded delivery. Must not throw. */
  onMessage: (message: MessageProxy) => void;
  /** Called after the consumer dead-lettered a payload that does not decode. */
  onUndecodable?: (delivery: UndecodableDelivery) => void;
  /** Called when the consumer lost its connection and is recovering (deliveries not yet acked will come back). */
  onConnectionLost?: (error: unknown) => void;
}

/** A stream of deliveries from one queue (`q` or `q.DQ`). */
export interface Consumer {
  readonly queue: string;
  /** Begin delivering to `onMessage`; resolves once the consumer is registered with the broker. */
  start(): Promise<void>;
  ack(message: MessageProxy): Promise<void>;
  /** Dead-letter the delivery, keeping `message.deadLetterReason` where the broker can. */
  nack(message: MessageProxy): Promise<void>;
  /** Give deliveries back to their queue unprocessed (shutdown, a worker thread restart). */
  requeue(messages: MessageProxy[]): Promise<void>;
  /** Stop fetching new deliveries; ack, nack and requeue keep working. */
  stop(): Promise<void>;
  /** Release the consumer; deliveries not acked return to the broker. */
  close(): Promise<void>;
}

export interface EnqueueOptions {
  /** ms before the message may run; the message goes to `q.DQ` with an `eta`. */
  delay?: number;
}

export interface BrokerOptions {
  /** The middleware, in order (default: `defaultMiddleware()`, which the concrete brokers install). */
  middleware?: Middleware[];
  registry?: ActorRegistry;
}

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

const log = getLogger("broker");

type HookFn = (broker: Broker, first?: unknown, second?: unknown) => void | Promise<void>;

interface Handler {
  middleware: Middleware;
  fn: HookFn;
}

/**
 * The transport-independent half of a broker: middleware dispatch, queue declaration, Dramatiq's delay rules.
 * Subclasses implement the transport (`publish`, `consume`, …).
 */
export abstract class Broker {
  /** The middleware in order; change it with addMiddleware and removeMiddleware. */
  readonly middleware: readonly Middleware[];
  /** Per hook, the middleware that implement it with their hook functions (rebuilt when the list changes). */
  private readonly handlers = new Map<HookName, Handler[]>();
  readonly registry: ActorRegistry;
  /** Canonical queues this broker knows (declared by actors or by use). */
  protected readonly queues = new Set<string>();
  private connecting: Promise<void> | undefined;
  /** Set once an attempt succeeded, so a send skips waiting on a settled promise (a microtask per send). */
  private connected = false;

  /**
   * The base class receives its middleware rather than choosing it: the middleware modules import this one (for
   * the hook types), so a default list here would close an import circle. Concrete brokers pass the default list.
   */
  constructor(options: BrokerOptions & { middleware: Middleware[] }) {
    this.middleware = [...options.middleware];
    this.registry = options.registry ?? defaultRegistry;
  }

  /** The broker URL with its password redacted. */
  abstract readonly displayUrl: string;

  /** Open connections; rejects with a clear error naming the (redacted) URL when the broker is unreachable. */
  protected abstract doConnect(): Promise<void>;
  abstract close(): Promise<void>;
  /** Publish one encoded message to `message.queueName` (`q` or `q.DQ`); returns the copy actually published. */
  protected abstract publish(message: Message): Promise<Message>;
  abstract consume(queue: string, options: ConsumeOptions): Consumer;
  /** Drop every message of `q`, `q.DQ` and `q.XQ`. */
  abstract purge(queue: string): Promise<void>;
  abstract queueStats(queue: string): Promise<QueueStats>;
  abstract deadLetters(queue: string, limit?: number): Promise<DeadLetter[]>;
  /** Canonical queues that exist on the broker (for `troupe queues` without --queues). */
  abstract listQueues(): Promise<string[]>;

  /**
   * What `queueStats` and `listQueues` cannot see on this broker as configured, and how to make them see it;
   * undefined when they see everything. Tools print it next to the figures rather than under-report silently.
   */
  statsBlindSpots(): string | undefined {
    return undefined;
  }

  /** Publish several messages; brokers override this with a pipelined or batched publish. */
  protected async publishMany(messages: Message[]): Promise<Message[]> {
    return Promise.all(messages.map((m) => this.publish(m)));
  }

  /** Connect once; later calls wait for the same attempt. Failed attempts are retried on the next call. */
  connect(): Promise<void> {
    if (!this.connecting) {
      this.connecting = this.doConnect().then(
        () => {
          this.connected = true;
        },
        (err) => {
          this.connecting = undefined;
          throw err;
        },
      );
    }
    return this.connecting;
  }

  /** Register a canonical queue (and its delay queue) and tell middleware about them. */
  async declareQueue(queue: string): Promise<void> {
    const canonical = qName(queue);
    if (this.queues.has(canonical)) return;
    this.queues.add(canonical);
    await this.emitAfter("afterDeclareQueue", canonical);
    await this.emitAfter("afterDeclareDelayQueue", dqName(canonical));
  }

  declaredQueues(): string[] {
    return [...this.queues];
  }

  /** Dramatiq's `enqueue`: a delay routes the message to `q.DQ` with `eta = now + delay`. */
  async enqueue<R>(message: Message<R>, options: EnqueueOptions = {}): Promise<Message<R>> {
    const [sent] = await this.enqueueMany([message], options);
    return sent as Message<R>;
  }

  /** Enqueue several messages in one broker round trip where the transport allows. */
  async enqueueMany(messages: Message[], options: EnqueueOptions = {}): Promise<Message[]> {
    // A single awaited send is bound by its round trip, so every await here that waits on nothing is skipped.
    if (!this.connected) await this.connect();
    const prepared: Message[] = [];
    for (const original of messages) {
      if (!this.queues.has(qName(original.queueName))) await this.declareQueue(original.queueName);
      let message = original;
      if (options.delay !== undefined) {
        if (!Number.isFinite(options.delay) || options.delay < 0) throw new TroupeError(`delay must be a non-negative number of ms, got ${options.delay}`);
        message = message.copy({ queueName: dqName(message.queueName), options: { eta: Date.now() + Math.round(options.delay) } });
      }
      const before = this.emitBefore("beforeEnqueue", message, options.delay);
      if (before) await before;
      prepared.push(message);
    }
    const sent = prepared.length === 1 ? [await this.publish(prepared[0]!)] : await this.publishMany(prepared);
    for (const message of sent) {
      const after = this.emitAfter("afterEnqueue", message, options.delay);
      if (after) await after;
    }
    return sent;
  }

  /**
   * Move a due delayed message to its canonical queue and ack the delay-queue delivery. Brokers that can do
   * both in one atomic step override this (Dramatiq's two steps can duplicate a message on a crash).
   */
  async promote(delivery: MessageProxy, consumer: Consumer): Promise<void> {
    const promoted = delivery.message.copy({ queueName: qName(delivery.message.queueName), options: { eta: undefined } });
    await this.enqueue(promoted);
    await consumer.ack(delivery);
  }

  /** Wait until `q` and `q.DQ` are empty and nothing is in flight. */
  async join(queue: string, { timeout = 60_000, interval = 20 }: { timeout?: number; interval?: number } = {}): Promise<void> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const stats = await this.queueStats(qName(queue));
      if (stats.ready + stats.delayed + stats.inFlight === 0) return;
      if (Date.now() >= deadline) throw new QueueJoinTimeout(`queue ${queue} did not drain within ${timeout} ms`);
      await new Promise((resolve) => setTimeout(resolve, interval));
    }
  }

  addMiddleware(middleware: Middleware, where: { before?: abstract new (...args: never[]) => Middleware; after?: abstract new (...args: never[]) => Middleware } = {}): void {
    if (where.before && where.after) throw new TroupeError("addMiddleware takes before or after, not both");
    const list = this.middleware as Middleware[];
    const ref = where.before ?? where.after;
    if (!ref) list.push(middleware);
    else {
      const index = list.findIndex((m) => m instanceof ref);
      if (index < 0) throw new TroupeError(`middleware ${ref.name} is not installed`);
      list.splice(where.before ? index : index + 1, 0, middleware);
    }
    this.handlers.clear();
  }

  /** Take a middleware out; false when it was not installed. */
  removeMiddleware(middleware: Middleware): boolean {
    const list = this.middleware as Middleware[];
    const index = list.indexOf(middleware);
    if (index < 0) return false;
    list.splice(index, 1);
    this.handlers.clear();
    return true;
  }

  private handlersOf(hook: HookName): Handler[] {
    let found = this.handlers.get(hook);
    if (!found) {
      found = [];
      for (const middleware of this.middleware) {
        const fn = middleware[hook] as HookFn | undefined;
        if (typeof fn === "function") found.push({ middleware, fn });
      }
      this.handlers.set(hook, found);
    }
    return found;
  }

  /**
   * Run a `before*` hook in list order; a MiddlewareError (SkipMessage) propagates, other errors are logged.
   * Hooks run synchronously while they return nothing: a promise comes back only once a hook returns one.
   */
  emitBefore<K extends HookName>(hook: K, ...args: HookArgs<K>): void | Promise<void> {
    const list = this.handlersOf(hook);
    for (let i = 0; i < list.length; i++) {
      const pending = this.runHook(list[i]!, hook, args, true);
      if (pending) return this.emitRest(list, pending, hook, args, i + 1, 1);
    }
  }

  /** Run an `after*` hook in reverse list order; every error is logged, none is raised. Synchronous like emitBefore. */
  emitAfter<K extends HookName>(hook: K, ...args: HookArgs<K>): void | Promise<void> {
    const list = this.handlersOf(hook);
    for (let i = list.length - 1; i >= 0; i--) {
      const pending = this.runHook(list[i]!, hook, args, false);
      if (pending) return this.emitRest(list, pending, hook, args, i - 1, -1);
    }
  }

  /** The rest of an emit once a hook went async: each later hook waits for the one before. */
  private async emitRest<K extends HookName>(list: Handler[], pending: Promise<void>, hook: K, args: HookArgs<K>, from: number, step: 1 | -1): Promise<void> {
    await pending;
    for (let i = from; i >= 0 && i < list.length; i += step) {
      const next = this.runHook(list[i]!, hook, args, step === 1);
      if (next) await next;
    }
  }

  private runHook<K extends HookName>({ middleware, fn }: Handler, hook: K, args: HookArgs<K>, raiseMiddlewareErrors: boolean): void | Promise<void> {
    try {
      // No hook takes more than two arguments after the broker: passing them by position spares a spread array.
      const pending = fn.call(middleware, this, args[0], args[1]);
      if (pending) return pending.then(undefined, (err: unknown) => this.hookFailed(middleware, hook, args, raiseMiddlewareErrors, err));
    } catch (err) {
      this.hookFailed(middleware, hook, args, raiseMiddlewareErrors, err);
    }
  }

  private hookFailed<K extends HookName>(m: Middleware, hook: K, args: HookArgs<K>, raiseMiddlewareErrors: boolean, err: unknown): void {
    if (raiseMiddlewareErrors && err instanceof MiddlewareError) throw err;
    log.critical(`middleware hook ${hook} failed`, { middleware: m.constructor.name, err, ...hookMessageFields(args) });
  }
}

function hookMessageFields(args: readonly unknown[]): Record<string, unknown> {
  const first = args[0] as { messageId?: unknown; actorName?: unknown; queueName?: unknown } | undefined;
  if (first && typeof first.messageId === "string") return messageFields(first as Message);
  return {};
}

