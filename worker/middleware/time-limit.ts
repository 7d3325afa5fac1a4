import type { Broker } from "../broker.js";
import type { MessageProxy } from "../proxy.js";
import { optionOf } from "./lookup.js";
import type { Middleware } from "./middleware.js";

export const DEFAULT_TIME_LIMIT = 600_000;

/**
 * Dramatiq's TimeLimit: an actor running longer than `time_limit` ms fails with `TimeLimitExceeded` (and is
 * retried like any failure). The worker enforces the limit this sets: the actor's abort signal fires first, and a
 * thread that does not give up within the abort grace (a CPU-bound loop) is terminated and replaced.
 * `Infinity` disables the limit.
 */
export class TimeLimit implements Middleware {
  readonly actorOptions = ["timeLimit"] as const;
  readonly timeLimit: number;

  constructor({ timeLimit = DEFAULT_TIME_LIMIT }: { timeLimit?: number } = {}) {
    this.timeLimit = timeLimit;
  }

  beforeProcessMessage(broker: Broker, message: MessageProxy): void {
    message.timeLimit = optionOf(broker, message, "timeLimit", this.timeLimit, { truthy: true });
  }
}
