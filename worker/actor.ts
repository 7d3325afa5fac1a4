import type { JsonValue } from "./encoder.js";
import { TroupeError } from "./errors.js";
import { assertJson } from "./json-check.js";
import { Message, type MessageOptions } from "./message.js";
import { ACTOR_OPTION_KEYS, toWireOptions, type ActorOptions, type SendOptions } from "./options.js";
import { isValidQueueName } from "./queues.js";
import { defaultRegistry, type ActorRegistry, type RegisteredActor } from "./registry.js";
import { getBroker } from "./setup.js";

export type ActorFn<A extends unknown[], R> = (...args: A) => R | Promise<R>;

/** An actor's parameters without the last one, which a pipeline fills with the previous step's result. */
export type PipedArgs<A extends unknown[]> = A extends [...infer Given, unknown] ? Given : A;

/**
 * A named function that runs in a worker. Calling `send` enqueues a message; the worker passes the message's
 * `args` to the function, followed by its `kwargs` object when a sender (e.g. Python) gave any.
 */
export class Actor<A extends unknown[] = unknown[], R = unknown> implements RegisteredActor {
  readonly actorName: string;
  readonly queueName: string;
  readonly priority: number;
  readonly declaredOptions: ActorOptions;

  constructor(
    name: string,
    readonly fn: ActorFn<A, R>,
    options: ActorOptions = {},
    readonly registry: ActorRegistry = defaultRegistry,
  ) {
    if (typeof name !== "string" || name === "") throw new TroupeError("an actor needs a non-empty name");
    if (typeof fn !== "function") throw new TroupeError(`actor "${name}" needs a function`);
    for (const key of Object.keys(options)) {
      if (!ACTOR_OPTION_KEYS.has(key)) throw new TroupeError(`actor "${name}": unknown option "${key}"`);
    }
    if (options.queue !== undefined && options.queueName !== undefined && options.queue !== options.queueName) {
      throw new TroupeError(`actor "${name}": queue and queueName disagree`);
    }
    const queue = options.queueName ?? options.queue ?? "default";
    if (!isValidQueueName(queue) || queue.endsWith(".DQ") || queue.endsWith(".XQ")) {
      throw new TroupeError(`actor "${name}": invalid queue name "${queue}" (letters, digits, '.', '_', '-'; not starting with a digit)`);
    }
    this.actorName = name;
    this.queueName = queue;
    this.priority = options.priority ?? 0;
    this.declaredOptions = options;
    registry.register(this);
  }

  /** Declared options with run-time overrides (operator Actor resources) applied. */
  get options(): ActorOptions {
    return this.registry.optionsOf(this.actorName) ?? this.declaredOptions;
  }

  /** Build a message without sending it (for pipelines and groups). */
  message(...args: A): Message<Awaited<R>> {
    return this.messageWithOptions({ args: args as JsonValue[] });
  }

  /**
   * Build a pipeline step: as in Dramatiq, the previous step's result is appended to these arguments when the step
   * runs, so the actor's last parameter is left out here. `pipeline([add.message(2, 3), double.step(),
   * format.step("total=")])` type-checks where `double.message()` would be missing its argument.
   */
  step(...args: PipedArgs<A>): Message<Awaited<R>> {
    return this.messageWithOptions({ args: args as JsonValue[] });
  }

  messageWithOptions(options: SendOptions & { args?: A | JsonValue[] } = {}): Message<Awaited<R>> {
    const args = (options.args ?? []) as unknown[];
    const kwargs = options.kwargs ?? {};
    assertJson(args, "args");
    assertJson(kwargs, "kwargs");
    const wire: MessageOptions = { ...toWireOptions(options), ...(options.options ?? {}) };
    if (options.priority !== undefined) wire.broker_priority = options.priority;
    if (options.delay !== undefined) wire.delay = options.delay;
    assertJson(wire, "options");
    return new Message<Awaited<R>>({ queueName: this.queueName, actorName: this.actorName, args, kwargs, options: wire });
  }

  /** Enqueue a message with these arguments. Resolves to the message as enqueued. */
  send(...args: A): Promise<Message<Awaited<R>>> {
    return getBroker().enqueue(this.message(...args));
  }

  sendWithOptions(options: SendOptions & { args?: A | JsonValue[] } = {}): Promise<Message<Awaited<R>>> {
    const { delay, ...rest } = options;
    return getBroker().enqueue(this.messageWithOptions(rest), { delay });
  }

  /** Run the function here and now, with no broker and no middleware. */
  call(...args: A): R | Promise<R> {
    return this.fn(...args);
  }

  toString(): string {
    return `Actor(${this.actorName})`;
  }
}

/**
 * Declare an actor.
 *
 * ```ts
 * export const add = actor("add", (a: number, b: number) => a + b, { queue: "default", maxRetries: 3 });
 * await add.send(1, 2);
 * ```
 */
export function actor<A extends unknown[], R>(name: string, fn: ActorFn<A, R>, options?: ActorOptions): Actor<A, R> {
  return new Actor(name, fn, options);
}
