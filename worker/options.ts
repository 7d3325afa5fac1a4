import type { JsonValue } from "./encoder.js";
import type { MessageOptions } from "./message.js";

/** Something an option may name as a target actor: its name, or the actor itself. */
export interface ActorRef {
  readonly actorName: string;
}

/** A class of errors, or its name (names also match errors that crossed from a worker thread). */
export type ErrorMatcher = string | (abstract new (...args: never[]) => Error);

/**
 * Options shared by actors and messages, with Dramatiq's names in camelCase. On the wire (message options)
 * they are written in snake_case; on an actor they are the defaults for its messages.
 */
export interface WireOptions {
  /** Retries after a failure; `null` retries forever (default 20). */
  maxRetries?: number | null;
  /** Smallest backoff before a retry, ms (default 15 000). */
  minBackoff?: number;
  /** Largest backoff before a retry, ms (default 7 days). */
  maxBackoff?: number;
  /** An actor run longer than this (ms) is stopped and counts as failed (default 10 minutes). */
  timeLimit?: number;
  /** Messages older than this (ms since first enqueue) are dead-lettered instead of run. */
  maxAge?: number;
  /** Store the return value in the results backend. */
  storeResults?: boolean;
  /** How long a stored result lives, ms (default 10 minutes). */
  resultTtl?: number;
  /** Actor called with (message, result) after a success. */
  onSuccess?: string | ActorRef;
  /** Actor called with (message, {type, message}) after each failure. */
  onFailure?: string | ActorRef;
  /** Actor called with (message, {retries, max_retries}) when retries are exhausted. */
  onRetryExhausted?: string | ActorRef;
  /** Abort the actor when the worker shuts down instead of letting it finish. */
  notifyShutdown?: boolean;
  /** In a pipeline, do not pass the previous result to this message. */
  pipeIgnore?: boolean;
}

/** Options of `actor(name, fn, options)`. */
export interface ActorOptions extends WireOptions {
  /** Queue of the actor (default "default"); `queueName` is Dramatiq's spelling. */
  queue?: string;
  queueName?: string;
  /** Local ordering inside one worker process: lower runs first (default 0). Never on the wire. */
  priority?: number;
  /** Decide whether to retry: called with the number of earlier failures and the error. */
  retryWhen?: (retries: number, error: Error) => boolean;
  /** Errors that are not retried: the message is dead-lettered at once. */
  throws?: ErrorMatcher | ErrorMatcher[];
  /**
   * Integers beyond `Number.MAX_SAFE_INTEGER` in the arguments (a Python sender's ids, database bigints) arrive
   * as exact `bigint`s instead of the nearest `number`; other numbers stay numbers. Never on the wire.
   */
  bigints?: boolean;
}

/** Options of `sendWithOptions` / `messageWithOptions`. */
export interface SendOptions extends WireOptions {
  args?: JsonValue[];
  kwargs?: { [key: string]: JsonValue };
  /** Delay before the message may run, ms. */
  delay?: number;
  /** Broker priority (RabbitMQ `x-max-priority` queues, memory broker): higher runs first. */
  priority?: number;
  /** Extra free-form options, written on the wire as given. */
  options?: MessageOptions;
}

const WIRE_KEYS: Record<keyof WireOptions, string> = {
  maxRetries: "max_retries",
  minBackoff: "min_backoff",
  maxBackoff: "max_backoff",
  timeLimit: "time_limit",
  maxAge: "max_age",
  storeResults: "store_results",
  resultTtl: "result_ttl",
  onSuccess: "on_success",
  onFailure: "on_failure",
  onRetryExhausted: "on_retry_exhausted",
  notifyShutdown: "notify_shutdown",
  pipeIgnore: "pipe_ignore",
};

export const ACTOR_OPTION_KEYS: ReadonlySet<string> = new Set([
  ...Object.keys(WIRE_KEYS),
  "queue",
  "queueName",
  "priority",
  "retryWhen",
  "throws",
  "bigints",
]);

/** The JSON Schema of one overridable option, as the Actor CRD writes it. */
export interface OverridableOptionSchema {
  readonly type: "integer" | "boolean" | "string";
  readonly minimum?: number;
  readonly nullable?: boolean;
}

/**
 * The actor options an Actor resource may override (`spec.options`), each with its schema: the one list. The
 * operator's ActorOverrideOptions type is derived from it, the worker validates the overrides file against it, and
 * test/operator/overrides.test.ts checks that the Actor CRD declares exactly these schemas. Functions cannot come
 * from a resource, so `retryWhen` and `throws` are not here; callbacks name their actor.
 */
export const OVERRIDABLE_OPTIONS = {
  maxRetries: { type: "integer", minimum: 0, nullable: true },
  minBackoff: { type: "integer", minimum: 0 },
  maxBackoff: { type: "integer", minimum: 0 },
  timeLimit: { type: "integer", minimum: 1 },
  maxAge: { type: "integer", minimum: 1 },
  priority: { type: "integer" },
  storeResults: { type: "boolean" },
  resultTtl: { type: "integer", minimum: 1 },
  notifyShutdown: { type: "boolean" },
  pipeIgnore: { type: "boolean" },
  onSuccess: { type: "string" },
  onFailure: { type: "string" },
  onRetryExhausted: { type: "string" },
} as const satisfies { readonly [K in keyof ActorOptions]?: OverridableOptionSchema };

type JsonTypeOf<S extends OverridableOptionSchema> = (S["type"] extends "integer" ? number : S["type"] extends "boolean" ? boolean : string) | (S extends { nullable: true } ? null : never);

/** The options of one actor as an Actor resource (and the overrides file the operator writes from it) gives them. */
export type OverridableOptions = { -readonly [K in keyof typeof OVERRIDABLE_OPTIONS]?: JsonTypeOf<(typeof OVERRIDABLE_OPTIONS)[K]> };

/** What `value` should have been when it does not fit `schema` ("an integer >= 0"), else undefined. */
export function overrideMismatch(schema: OverridableOptionSchema, value: unknown): string | undefined {
  const min = schema.minimum;
  const fits = value === null ? schema.nullable === true : schema.type === "integer" ? Number.isSafeInteger(value) && (min === undefined || (value as number) >= min) : typeof value === schema.type;
  if (fits) return undefined;
  return `${schema.type === "integer" ? "an" : "a"} ${schema.type}${min === undefined ? "" : ` >= ${min}`}${schema.nullable ? " or null" : ""}`;
}

export function toSnakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

export function toCamelCase(name: string): string {
  return name.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

function refName(value: string | ActorRef): string {
  return typeof value === "string" ? value : value.actorName;
}

/** Message-level options in their wire form (snake_case, actor references as names). */
export function toWireOptions(options: WireOptions): MessageOptions {
  const out: MessageOptions = {};
  for (const [camel, snake] of Object.entries(WIRE_KEYS) as [keyof WireOptions, string][]) {
    const value = options[camel];
    if (value === undefined) continue;
    out[snake] = typeof value === "object" && value !== null ? refName(value) : (value as JsonValue);
  }
  return out;
}

/**
 * Dramatiq's lookup order for an option: the message's own option when its key is present, else the actor's,
 * else the default. `truthy` mirrors the options Dramatiq reads with `or` (a falsy message value falls through).
 */
export function resolveOption<T>(
  messageOptions: MessageOptions,
  actorOptions: ActorOptions | undefined,
  camel: keyof WireOptions,
  fallback: T,
  { truthy = false }: { truthy?: boolean } = {},
): T {
  const fromMessage = messageOptions[WIRE_KEYS[camel]];
  if (truthy ? Boolean(fromMessage) : fromMessage !== undefined) return fromMessage as T;
  const fromActor = actorOptions?.[camel];
  if (truthy ? Boolean(fromActor) : fromActor !== undefined) {
    return (typeof fromActor === "object" && fromActor !== null ? refName(fromActor) : fromActor) as T;
  }
  return fallback;
}
