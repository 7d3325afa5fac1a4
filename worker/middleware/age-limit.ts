import type { Broker } from "../broker.js";
import { SkipMessage } from "../errors.js";
import type { MessageProxy } from "../proxy.js";
import { optionOf } from "./lookup.js";
import type { Middleware } from "./middleware.js";

export const AGE_LIMIT_EXCEEDED = "Message age limit exceeded";

/**
 * Dramatiq's AgeLimit: a message older than `max_age` ms (counted from its first enqueue, which retries and delays
 * keep) is not run; it is failed and skipped, so it ends in the dead-letter queue.
 */
export class AgeLimit implements Middleware {
  readonly actorOptions = ["maxAge"] as const;
  readonly maxAge: number | undefined;

  constructor({ maxAge }: { maxAge?: number } = {}) {
    this.maxAge = maxAge;
  }

  beforeProcessMessage(broker: Broker, message: MessageProxy): void {
    const maxAge = optionOf<number | undefined>(broker, message, "maxAge", this.maxAge, { truthy: true });
    if (!maxAge) return;
    if (Date.now() - message.message.messageTimestamp >= maxAge) {
      message.fail(AGE_LIMIT_EXCEEDED);
      throw new SkipMessage(AGE_LIMIT_EXCEEDED);
    }
  }
}
