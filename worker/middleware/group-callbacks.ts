import type { Broker } from "../broker.js";
import { rawElements, type JsonValue } from "../encoder.js";
import { Message, type MessageData } from "../message.js";
import type { MessageProxy } from "../proxy.js";
import type { RateLimiterBackend } from "../rate-limits/backend.js";
import { Barrier } from "../rate-limits/barrier.js";
import { getRateLimiterBackend } from "../global.js";
import type { Middleware, ProcessOutcome } from "./middleware.js";
import { enqueueOrFail } from "./publish.js";

/** Dramatiq's default barrier lifetime for group completion (1 day). */
export const DEFAULT_BARRIER_TTL = 86_400_000;

export interface GroupCallbacksOptions {
  /** Where group barriers live (default: `getRateLimiterBackend()`, resolved on first use). */
  rateLimiterBackend?: RateLimiterBackend;
  barrierTtl?: number;
}

/**
 * Dramatiq's GroupCallbacks: each successful group member (or the last message of a member pipeline) arrives at
 * the group's barrier, keyed by `group_completion_uuid`; the member that clears it enqueues the
 * `group_completion_callbacks`. The barrier is an atomic countdown, so exactly one member fires them however many
 * workers finish members at once.
 */
export class GroupCallbacks implements Middleware {
  readonly barrierTtl: number;
  private readonly configured: RateLimiterBackend | undefined;

  constructor({ rateLimiterBackend, barrierTtl = DEFAULT_BARRIER_TTL }: GroupCallbacksOptions = {}) {
    this.configured = rateLimiterBackend;
    this.barrierTtl = barrierTtl;
  }

  get rateLimiterBackend(): RateLimiterBackend {
    return this.configured ?? getRateLimiterBackend();
  }

  afterProcessMessage(broker: Broker, message: MessageProxy, { exception }: ProcessOutcome): void | Promise<void> {
    if (exception !== undefined || message.failed) return;
    const { group_completion_uuid: uuid, group_completion_callbacks: callbacks } = message.options;
    if (typeof uuid === "string" && Array.isArray(callbacks)) return this.arrive(broker, message, uuid, callbacks);
  }

  /** Arrive at the group's barrier; the member that clears it enqueues the callbacks. */
  private async arrive(broker: Broker, message: MessageProxy, uuid: string, callbacks: JsonValue[]): Promise<void> {
    const barrier = new Barrier(uuid, { backend: this.rateLimiterBackend, ttl: this.barrierTtl });
    if (!(await barrier.wait({ block: false }))) return;
    // The callbacks as they were read, so that they are enqueued verbatim (Dramatiq's rule) down to their numbers.
    const raw = message.message.rawOption("group_completion_callbacks");
    const messages = raw === undefined ? callbacks.map((data) => Message.fromData(data as unknown as MessageData)) : rawElements(raw).map((text) => Message.decode(text));
    await enqueueOrFail(broker, message, messages, undefined, "the group completion callbacks");
  }
}
