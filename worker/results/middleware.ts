import type { Broker } from "../broker.js";
import { getLogger, messageFields } from "../logging.js";
import type { MessageProxy } from "../proxy.js";
import { DEFAULT_RESULT_TTL, type ResultBackend } from "./backend.js";
import { getResultBackend } from "../global.js";
import { errorType } from "../middleware/error-info.js";
import { optionOf } from "../middleware/lookup.js";
import type { Middleware, ProcessOutcome, WorkerInfo } from "../middleware/middleware.js";
import type { Message, MessageOptions } from "../message.js";
import { resolveOption } from "../options.js";
import { qName } from "../queues.js";
import { MiddlewareError } from "../errors.js";
import { workerMetrics } from "../metrics/metrics.js";

export interface ResultsOptions {
  /** Where results go (default: `getResultBackend()`, resolved on first use). */
  backend?: ResultBackend;
  storeResults?: boolean;
  resultTtl?: number;
  /**
   * Refuse to send a message that stores results when this process has no results backend (default true). Off
   * for a producer that reads results from a backend it names itself, as the operator's pipeline engine does.
   */
  checkOnEnqueue?: boolean;
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
  private backendFound: boolean;

  constructor({ backend, storeResults = false, resultTtl, checkOnEnqueue = true }: ResultsOptions = {}) {
    this.configured = backend;
    this.backendFound = !checkOnEnqueue;
    this.storeResults = storeResults;
    this.resultTtl = resultTtl || DEFAULT_RESULT_TTL;
  }

  get backend(): ResultBackend {
    return this.configured ?? getResultBackend();
  }

  /**
   * Fail fast where a result would otherwise be lost later, one message at a time: a worker whose actors store
   * results, or a producer sending such a message, with no results backend (RabbitMQ without TROUPE_RESULTS_URL).
   */
  beforeWorkerBoot(broker: Broker, worker: WorkerInfo): void {
    const storing = broker.registry
      .list()
      .filter((a) => worker.queues.includes(qName(a.queueName)) && this.stores(broker, {}, a.actorName))
      .map((a) => a.actorName);
    if (storing.length) this.requireBackend(storing);
  }

  beforeEnqueue(broker: Broker, message: Message): void {
    if (!this.backendFound && this.stores(broker, message.options, message.actorName)) this.requireBackend([message.actorName]);
  }

  private stores(broker: Broker, options: MessageOptions, actorName: string): boolean {
    return Boolean(resolveOption(options, broker.registry.optionsOf(actorName), "storeResults", this.storeResults));
  }

  private requireBackend(actors: string[]): void {
    try {
      void this.backend;
      this.backendFound = true;
    } catch (err) {
      // A MiddlewareError, so that the broker raises it from a before-hook instead of logging it and carrying on.
      throw new MiddlewareError(`${actors.map((a) => `"${a}"`).join(", ")} store${actors.length === 1 ? "s" : ""} results (storeResults), but ${(err as Error).message}`);
    }
  }

  private settings(broker: Broker, message: MessageProxy): { store: boolean; ttl: number } {
    return { store: Boolean(optionOf(broker, message, "storeResults", this.storeResults)), ttl: optionOf(broker, message, "resultTtl", this.resultTtl) };
  }

  afterProcessMessage(broker: Broker, message: MessageProxy, { result, exception }: ProcessOutcome): void | Promise<void> {
    if (exception !== undefined) return;
    const { store, ttl } = this.settings(broker, message);
    if (store) return this.store(message, (backend) => backend.storeResult(message.message, result ?? null, ttl));
    else if (result !== undefined && result !== null && message.options.pipe_target === undefined) {
      log.debug("actor returned a value but results are not stored; set storeResults to keep it", messageFields(message.message));
    }
  }

  afterSkipMessage(broker: Broker, message: MessageProxy): void | Promise<void> {
    const { store, ttl } = this.settings(broker, message);
    if (store && !message.failed) return this.store(message, (backend) => backend.storeResult(message.message, null, ttl));
  }

  afterNack(broker: Broker, message: MessageProxy): void | Promise<void> {
    if (!message.failed || !broker.registry.has(message.actorName)) return;
    const { store, ttl } = this.settings(broker, message);
    if (!store) return;
    // Dramatiq stores `Exception("unknown")` when no error was stuffed (e.g. a middleware failed the message).
    const exception = message.exception;
    const error = exception instanceof Error ? { name: errorType(exception), message: exception.message } : { name: "Exception", message: message.deadLetterReason ?? "unknown" };
    return this.store(message, (backend) => backend.storeException(message.message, error, ttl));
  }

  /**
   * A store that fails (the backend is down, or refuses the value's size) loses that result only: it is logged with
   * the message id and counted, and the message is still acked or dead-lettered as decided.
   */
  private async store(message: MessageProxy, write: (backend: ResultBackend) => Promise<void>): Promise<void> {
    try {
      await write(this.backend);
    } catch (err) {
      workerMetrics().resultStoreFailures.inc({ queue_name: message.queueName, actor_name: message.actorName });
      log.error("result not stored", { ...messageFields(message.message), err });
    }
  }
}
