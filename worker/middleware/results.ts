import type { Broker } from "../broker.js";
import { getLogger, messageFields } from "../logging.js";
import type { MessageProxy } from "../proxy.js";
import { DEFAULT_RESULT_TTL, type ResultBackend } from "../results/backend.js";
import { getResultBackend } from "../global.js";
import { errorType } from "./error-info.js";
import { optionOf } from "./lookup.js";
import type { Middleware, ProcessOutcome } from "./middleware.js";

export interface ResultsOptions {
  /** Where results go (default: `getResultBackend()`, resolved on first use). */
  backend?: ResultBackend;
  storeResults?: boolean;
  resultTtl?: number;
}

const log = getLogger("results");

/**
 * Dramatiq's Results: with `store_results`, a return value is stored for `result_ttl` ms; a message that ends
 * failed (retries exhausted, `throws`, age limit) gets a failure record in `afterNack`, once Retries has decided;
 * failures that will be retried store nothing. A skipped, non-failed message stores `null`.
 */
export class Results implements Middleware {
  readonly actorOptions = ["storeResults", "resultTtl"] as const;
  readonly storeResults: boolean;
  readonly resultTtl: number;
  private readonly configured: ResultBackend | undefined;

  constructor({ backend, storeResults = false, resultTtl }: ResultsOptions = {}) {
    this.configured = backend;
    this.storeResults = storeResults;
    this.resultTtl = resultTtl || DEFAULT_RESULT_TTL;
  }

  get backend(): ResultBackend {
    return this.configured ?? getResultBackend();
  }

  private settings(broker: Broker, message: MessageProxy): { store: boolean; ttl: number } {
    return { store: Boolean(optionOf(broker, message, "storeResults", this.storeResults)), ttl: optionOf(broker, message, "resultTtl", this.resultTtl) };
  }

  afterProcessMessage(broker: Broker, message: MessageProxy, { result, exception }: ProcessOutcome): void | Promise<void> {
    if (exception !== undefined) return;
    const { store, ttl } = this.settings(broker, message);
    if (store) return this.backend.storeResult(message.message, result ?? null, ttl);
    else if (result !== undefined && result !== null && message.options.pipe_target === undefined) {
      log.debug("actor returned a value but results are not stored; set storeResults to keep it", messageFields(message.message));
    }
  }

  afterSkipMessage(broker: Broker, message: MessageProxy): void | Promise<void> {
    const { store, ttl } = this.settings(broker, message);
    if (store && !message.failed) return this.backend.storeResult(message.message, null, ttl);
  }

  afterNack(broker: Broker, message: MessageProxy): void | Promise<void> {
    if (!message.failed || !broker.registry.has(message.actorName)) return;
    const { store, ttl } = this.settings(broker, message);
    if (!store) return;
    // Dramatiq stores `Exception("unknown")` when no error was stuffed (e.g. a middleware failed the message).
    const exception = message.exception;
    const error = exception instanceof Error ? { name: errorType(exception), message: exception.message } : { name: "Exception", message: message.deadLetterReason ?? "unknown" };
    return this.backend.storeException(message.message, error, ttl);
  }
}
