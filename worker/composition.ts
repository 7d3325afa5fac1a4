import type { Broker } from "./broker.js";
import { ResultMissing, TroupeError } from "./errors.js";
import { nodeCrypto } from "./lazy.js";
import type { GetResultOptions, Message, MessageData } from "./message.js";
import { DEFAULT_BARRIER_TTL, GroupCallbacks } from "./middleware/group-callbacks.js";
import { Barrier } from "./rate-limits/barrier.js";
import { inWorkerThread } from "./runtime/rpc.js";
import { getBroker, getRateLimiterBackend } from "./setup.js";

export interface RunOptions {
  /** ms before the first message (pipeline) or every member (group) may run. */
  delay?: number;
}

export interface CompositionOptions {
  /** Broker to enqueue on (default: the global broker). */
  broker?: Broker;
}

/** Results are awaited with one deadline shared by every member, as Dramatiq does. */
class Deadline {
  private readonly end: number | undefined;
  constructor(timeout: number | undefined) {
    this.end = timeout === undefined ? undefined : Date.now() + timeout;
  }
  options({ block }: GetResultOptions): GetResultOptions {
    return this.end === undefined ? { block } : { block, timeout: Math.max(0, this.end - Date.now()) };
  }
}

async function hasResult(get: () => Promise<unknown>): Promise<boolean> {
  try {
    await get();
    return true;
  } catch (err) {
    if (err instanceof ResultMissing) return false;
    throw err;
  }
}

/**
 * Dramatiq's `pipeline`: each message's result is appended to the next message's arguments (unless the next sets
 * `pipeIgnore`). Child pipelines are flattened. The chain travels inside the messages (`options.pipe_target`), so
 * only the first message is enqueued and any worker can continue it.
 */
export class Pipeline {
  readonly messages: Message[];
  readonly broker: Broker;

  constructor(children: (Message | Pipeline)[], { broker }: CompositionOptions = {}) {
    this.broker = broker ?? getBroker();
    const flat: Message[] = [];
    for (const child of children) {
      if (child instanceof Pipeline) flat.push(...child.messages);
      else if (child instanceof Group) throw new TroupeError("a group cannot be a pipeline step (Dramatiq has no such composition); use group.addCompletionCallback() to continue after a group");
      else flat.push(child);
    }
    if (flat.length === 0) throw new TroupeError("a pipeline needs at least one message");
    // Built from the end so that each pipe_target holds the whole rest of the chain.
    const messages: Message[] = [flat[flat.length - 1]!.copy({ options: { pipe_target: undefined } })];
    for (let i = flat.length - 2; i >= 0; i--) {
      messages.unshift(flat[i]!.copy({ options: { pipe_target: messages[0]!.toData() as never } }));
    }
    this.messages = messages;
  }

  get length(): number {
    return this.messages.length;
  }

  /** A new pipeline with `child` appended (Dramatiq's `pipe | message`). */
  append(child: Message | Pipeline): Pipeline {
    return new Pipeline([this, child], { broker: this.broker });
  }

  /** Enqueue the first message; its delay is the larger of `delay` and its own `delay` option. */
  async run({ delay }: RunOptions = {}): Promise<this> {
    const first = this.messages[0]!;
    const own = typeof first.options.delay === "number" ? first.options.delay : 0;
    const effective = Math.max(delay ?? 0, own);
    await this.broker.enqueue(first, { delay: effective || undefined });
    return this;
  }

  /** The last message's result. */
  getResult<R = unknown>(options: GetResultOptions = {}): Promise<R> {
    return this.messages[this.messages.length - 1]!.getResult(options) as Promise<R>;
  }

  /** Every message's result, in order. */
  async getResults({ block = false, timeout }: GetResultOptions = {}): Promise<unknown[]> {
    const deadline = new Deadline(timeout);
    const results: unknown[] = [];
    for (const message of this.messages) results.push(await message.getResult(deadline.options({ block })));
    return results;
  }

  /** How many steps have finished (results are needed: `storeResults`). */
  async completedCount(): Promise<number> {
    let count = 0;
    for (const message of this.messages) {
      if (!(await hasResult(() => message.getResult()))) break;
      count++;
    }
    return count;
  }

  async completed(): Promise<boolean> {
    return hasResult(() => this.getResult());
  }
}

export type GroupChild = Message | Pipeline | Group;

/**
 * Dramatiq's `group`: members (messages, pipelines, groups) run in parallel. Completion callbacks fire once, when
 * every member has succeeded, through a barrier that the GroupCallbacks middleware counts down.
 */
export class Group {
  readonly children: GroupChild[];
  readonly broker: Broker;
  readonly completionCallbacks: MessageData[] = [];

  constructor(children: GroupChild[], { broker }: CompositionOptions = {}) {
    this.broker = broker ?? getBroker();
    this.children = [...children];
  }

  get length(): number {
    return this.children.length;
  }

  /** Enqueue `message` once every member has succeeded (needs the GroupCallbacks middleware). */
  addCompletionCallback(message: Message): this {
    this.completionCallbacks.push(message.toData());
    return this;
  }

  /** Enqueue every member, each with the same delay. */
  async run({ delay }: RunOptions = {}): Promise<this> {
    const children = this.completionCallbacks.length > 0 ? await this.stampedChildren() : this.children;
    const messages = children.filter((c): c is Message => !(c instanceof Pipeline || c instanceof Group));
    if (messages.length > 0) await this.broker.enqueueMany(messages, { delay });
    for (const child of children) if (child instanceof Pipeline || child instanceof Group) await child.run({ delay });
    return this;
  }

  /** Create the completion barrier and mark each member (a pipeline's last message) with it. */
  private async stampedChildren(): Promise<GroupChild[]> {
    const { backend, ttl } = this.barrierSettings();
    const uuid = nodeCrypto().randomUUID();
    await new Barrier(uuid, { backend, ttl }).create(this.children.length);
    const stamp = { group_completion_uuid: uuid, group_completion_callbacks: this.completionCallbacks as never };
    return this.children.map((child) => {
      if (child instanceof Group) throw new TroupeError("completion callbacks on a group that contains a group are not supported (as in Dramatiq)");
      if (child instanceof Pipeline) {
        const messages = [...child.messages];
        messages[messages.length - 1] = messages[messages.length - 1]!.copy({ options: stamp });
        return new Pipeline(messages, { broker: child.broker });
      }
      return child.copy({ options: stamp });
    });
  }

  private barrierSettings() {
    const middleware = this.broker.middleware.find((m): m is GroupCallbacks => m instanceof GroupCallbacks);
    if (middleware) return { backend: middleware.rateLimiterBackend, ttl: middleware.barrierTtl };
    // Inside an actor the broker is the main thread's proxy; its middleware (and backend) live there.
    if (inWorkerThread()) return { backend: getRateLimiterBackend(), ttl: DEFAULT_BARRIER_TTL };
    throw new TroupeError("GroupCallbacks middleware not found: it is required for group completion callbacks");
  }

  /** Every member's result in member order (a pipeline gives its last result, a nested group a list). */
  async getResults({ block = false, timeout }: GetResultOptions = {}): Promise<unknown[]> {
    const deadline = new Deadline(timeout);
    const results: unknown[] = [];
    for (const child of this.children) {
      if (child instanceof Group) results.push(await child.getResults(deadline.options({ block })));
      else results.push(await child.getResult(deadline.options({ block })));
    }
    return results;
  }

  /** Wait until every member has a result, up to `timeout` ms (default 10 s per Dramatiq's result timeout). */
  async wait({ timeout }: { timeout?: number } = {}): Promise<void> {
    await this.getResults({ block: true, timeout });
  }

  /** How many members have finished (in any order). */
  async completedCount(): Promise<number> {
    let count = 0;
    for (const child of this.children) if (await childCompleted(child)) count++;
    return count;
  }

  async completed(): Promise<boolean> {
    return (await this.completedCount()) === this.children.length;
  }
}

function childCompleted(child: GroupChild): Promise<boolean> {
  if (child instanceof Pipeline || child instanceof Group) return child.completed();
  return hasResult(() => child.getResult());
}

export function pipeline(children: (Message | Pipeline)[], options?: CompositionOptions): Pipeline {
  return new Pipeline(children, options);
}

export function group(children: GroupChild[], options?: CompositionOptions): Group {
  return new Group(children, options);
}
