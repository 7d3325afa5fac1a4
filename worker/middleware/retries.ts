import type { Broker } from "../broker.js";
import { RemoteError, Retry, errorIsA } from "../errors.js";
import { getLogger, messageFields } from "../logging.js";
import type { ErrorMatcher } from "../options.js";
import type { MessageProxy } from "../proxy.js";
import { computeBackoff } from "./backoff.js";
import { errorText, errorType } from "./error-info.js";
import { actorOptionsOf, optionOf } from "./lookup.js";
import type { Middleware, ProcessOutcome } from "./middleware.js";
import { enqueueOrFail, messageDict, sendToActor } from "./publish.js";

export const DEFAULT_MAX_RETRIES = 20;
export const DEFAULT_MIN_BACKOFF = 15_000;
/** Dramatiq clamps every backoff to 7 days. */
export const DEFAULT_MAX_BACKOFF = 7 * 24 * 3600 * 1000;
/** Dramatiq keeps at most 30 frames of traceback in the message. */
const TRACEBACK_LINES = 31;

export interface RetriesOptions {
  maxRetries?: number | null;
  minBackoff?: number;
  maxBackoff?: number;
  retryWhen?: (retries: number, error: Error) => boolean;
}

const log = getLogger("retries");

/**
 * Dramatiq's Retries: a failed message is re-enqueued, same id and timestamp, to the delay queue with an
 * exponential backoff (jittered), and the original delivery is acked. `options.retries`, `traceback` and
 * `requeue_timestamp` are written as Dramatiq writes them. Errors listed in `throws`, a `retryWhen` that says no, or
 * `max_retries` reached fail the message (dead-letter) and, when exhausted, send `on_retry_exhausted`.
 */
export class Retries implements Middleware {
  readonly actorOptions = ["maxRetries", "minBackoff", "maxBackoff", "retryWhen", "throws", "onRetryExhausted"] as const;
  readonly maxRetries: number | null;
  readonly minBackoff: number;
  readonly maxBackoff: number;
  readonly retryWhen: RetriesOptions["retryWhen"];

  constructor({ maxRetries = DEFAULT_MAX_RETRIES, minBackoff, maxBackoff, retryWhen }: RetriesOptions = {}) {
    this.maxRetries = maxRetries;
    // Dramatiq's constructor uses `or`: a middleware-level 0 means the default (message and actor 0 are honoured).
    this.minBackoff = minBackoff || DEFAULT_MIN_BACKOFF;
    this.maxBackoff = maxBackoff || DEFAULT_MAX_BACKOFF;
    this.retryWhen = retryWhen;
  }

  afterProcessMessage(broker: Broker, message: MessageProxy, { exception }: ProcessOutcome): void | Promise<void> {
    if (exception !== undefined) return this.afterFailure(broker, message, exception);
  }

  private async afterFailure(broker: Broker, message: MessageProxy, exception: unknown): Promise<void> {
    const actorOptions = actorOptionsOf(broker, message);
    const fields = messageFields(message.message);
    if (matchesAny(exception, actorOptions?.throws)) {
      log.info("actor raised an error listed in throws; not retrying", { ...fields, errorType: errorType(exception) });
      message.fail(`${errorType(exception)} is listed in throws: ${errorText(exception)}`);
      return;
    }

    const previous = typeof message.options.retries === "number" ? message.options.retries : 0;
    message.message = message.message.copy({ options: { retries: previous + 1, traceback: traceback(exception), requeue_timestamp: Date.now() } });

    const maxRetries = optionOf<number | null>(broker, message, "maxRetries", this.maxRetries);
    const retryWhen = actorOptions?.retryWhen ?? this.retryWhen;
    const giveUp = retryWhen ? !retryWhen(previous, asError(exception)) : maxRetries !== null && previous >= maxRetries;
    if (giveUp) {
      log.warn("retries exceeded", { ...fields, retries: previous, maxRetries });
      message.fail(retryWhen ? `retryWhen declined a retry after ${previous} retries` : `retries exhausted (${previous} of ${maxRetries})`);
      const target = optionOf<string | undefined>(broker, message, "onRetryExhausted", undefined, { truthy: true });
      if (target) await sendToActor(broker, message, target, [messageDict(message), { retries: previous, max_retries: maxRetries }], "on_retry_exhausted");
      return;
    }

    const delay = explicitDelay(exception) ?? this.backoff(broker, message, previous);
    log.info("retrying message", { ...fields, retries: previous + 1, delayMs: delay });
    await enqueueOrFail(broker, message, [message.message], delay, "the retry");
  }

  private backoff(broker: Broker, message: MessageProxy, previous: number): number {
    const minBackoff = optionOf(broker, message, "minBackoff", this.minBackoff);
    const maxBackoff = Math.min(optionOf(broker, message, "maxBackoff", this.maxBackoff), DEFAULT_MAX_BACKOFF);
    return computeBackoff(previous, { factor: minBackoff, maxBackoff })[1];
  }
}

function matchesAny(err: unknown, throws: ErrorMatcher | ErrorMatcher[] | undefined): boolean {
  if (throws === undefined) return false;
  return (Array.isArray(throws) ? throws : [throws]).some((matcher) => errorIsA(err, matcher));
}

/** The delay of a `Retry(message, delay)`, whether it was raised here or crossed from a worker thread. */
function explicitDelay(err: unknown): number | undefined {
  if (err instanceof RemoteError) return err.retryDelay;
  if (err instanceof Retry) return err.delay;
  return undefined;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function traceback(err: unknown): string {
  const text = err instanceof Error ? (err.stack ?? `${err.name}: ${err.message}`) : String(err);
  return text.split("\n").slice(0, TRACEBACK_LINES).join("\n");
}
