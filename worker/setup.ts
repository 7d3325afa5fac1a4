/**
 * The composition root: the only module that turns URLs into a broker, a results backend and a rate-limiter
 * backend, and that fills the process-wide slots (worker/global.ts) on first use. Brokers, backends and middleware
 * know nothing of each other's construction; adding a backend means a row in the tables below and the backend's
 * own module. docs/wiring.md draws the whole picture.
 */
import type { Broker, BrokerOptions } from "./broker.js";
import { MemoryBroker } from "./brokers/memory.js";
import { RabbitmqBroker } from "./brokers/rabbitmq.js";
import { parseAmqpUrl } from "./brokers/rabbitmq/url.js";
import { RedisBroker } from "./brokers/redis.js";
import { TroupeError } from "./errors.js";
import * as slots from "./global.js";
import { redactUrl } from "./logging.js";
import { setResultLookup } from "./message.js";
import type { RateLimiterBackend } from "./rate-limits/backend.js";
import { MemcachedRateLimiterBackend } from "./rate-limits/memcached.js";
import { MemoryRateLimiterBackend } from "./rate-limits/memory.js";
import { RedisRateLimiterBackend } from "./rate-limits/redis.js";
import { ThreadRateLimiterBackend } from "./rate-limits/thread.js";
import type { ResultBackend, ResultBackendOptions } from "./results/backend.js";
import { MemcachedResultBackend } from "./results/memcached.js";
import { MemoryResultBackend } from "./results/memory.js";
import { RedisResultBackend } from "./results/redis.js";
import { callMain } from "./runtime/rpc.js";

export const DEFAULT_BROKER_URL = "memory://";

/** What a URL is asked to be. */
export type ServiceRole = "broker" | "results" | "rate limiter";

/** The service behind a scheme: every scheme of a family is built by the same constructors. */
type Family = "memory" | "redis" | "rabbitmq" | "memcached";

const SCHEMES: Readonly<Record<string, Family>> = {
  memory: "memory",
  redis: "redis",
  rediss: "redis",
  amqp: "rabbitmq",
  amqps: "rabbitmq",
  memcached: "memcached",
};

const BROKERS: Partial<Record<Family, (url: string, options: BrokerOptions) => Broker>> = {
  memory: (_url, options) => new MemoryBroker(options),
  redis: (url, options) => new RedisBroker(url, options),
  rabbitmq: (url, options) => new RabbitmqBroker(url, options),
};

const RESULT_BACKENDS: Partial<Record<Family, (url: string, options: ResultBackendOptions) => ResultBackend>> = {
  memory: (_url, options) => new MemoryResultBackend(options),
  redis: (url, options) => new RedisResultBackend({ ...options, url }),
  memcached: (url, options) => new MemcachedResultBackend({ ...options, url }),
};

const RATE_LIMITER_BACKENDS: Partial<Record<Family, (url: string) => RateLimiterBackend>> = {
  memory: () => new MemoryRateLimiterBackend(),
  redis: (url) => new RedisRateLimiterBackend({ url }),
  memcached: (url) => new MemcachedRateLimiterBackend({ url }),
};

const ROLES: Record<ServiceRole, Partial<Record<Family, unknown>>> = {
  broker: BROKERS,
  results: RESULT_BACKENDS,
  "rate limiter": RATE_LIMITER_BACKENDS,
};

/** The schemes a role accepts, for error messages and docs (`memory://, redis://, …`). */
export function supportedSchemes(role: ServiceRole): string[] {
  return Object.entries(SCHEMES)
    .filter(([, family]) => ROLES[role][family] !== undefined)
    .map(([scheme]) => `${scheme}://`);
}

/**
 * The one scheme parser: which service a URL names, checked against what `role` can be. Anything else is an
 * error naming the URL with its password redacted and the schemes the role accepts.
 */
export function parseServiceUrl(url: string, role: ServiceRole): { scheme: string; family: Family } {
  const { scheme, family } = schemeOf(url);
  if (scheme === undefined || family === undefined || ROLES[role][family] === undefined) {
    throw new TroupeError(`unsupported ${role} URL ${redactUrl(url)}: use ${supportedSchemes(role).join(", ")}`);
  }
  return { scheme, family };
}

function schemeOf(url: string): { scheme?: string; family?: Family } {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]!.toLowerCase();
  return { scheme, family: scheme !== undefined && Object.hasOwn(SCHEMES, scheme) ? SCHEMES[scheme] : undefined };
}

/** True for `memory://`; any other URL, even one no role accepts, is not the memory broker. */
export function isMemoryBrokerUrl(url: string): boolean {
  return schemeOf(url).family === "memory";
}

/**
 * Whether `url` is written well enough to try (the scheme is judged later, by createBroker): a RabbitMQ cluster URL
 * (amqp://u:p@h1:5672,h2:5673/) is not a WHATWG URL, so the broker's own parser judges it.
 */
export function isWellFormedBrokerUrl(url: string): boolean {
  if (schemeOf(url).family !== "rabbitmq") return URL.canParse(url);
  try {
    parseAmqpUrl(url);
    return true;
  } catch {
    return false;
  }
}

/** TROUPE_BROKER_URL, else the in-memory broker; an empty variable counts as unset. */
export function brokerUrlFromEnv(): string {
  return process.env.TROUPE_BROKER_URL || DEFAULT_BROKER_URL;
}

/**
 * Build the broker a URL names, with the default middleware unless `options.middleware` is given. The broker does
 * not connect until used (`connect()` fails fast with the redacted URL).
 */
export function createBroker(url: string = brokerUrlFromEnv(), options: BrokerOptions = {}): Broker {
  return BROKERS[parseServiceUrl(url, "broker").family]!(url, options);
}

export function createResultBackend(url: string, options: ResultBackendOptions = {}): ResultBackend {
  return RESULT_BACKENDS[parseServiceUrl(url, "results").family]!(url, options);
}

export function createRateLimiterBackend(url: string): RateLimiterBackend {
  return RATE_LIMITER_BACKENDS[parseServiceUrl(url, "rate limiter").family]!(url);
}

/**
 * A results backend on the broker's own service, Dramatiq's usual setup: results beside the queues on a Redis
 * broker (same connection options), in this process on the memory broker; undefined for RabbitMQ.
 */
export function resultBackendFor(broker: Broker, options: ResultBackendOptions = {}): ResultBackend | undefined {
  if (broker instanceof RedisBroker) return new RedisResultBackend({ ...options, ...broker.connection });
  if (broker instanceof MemoryBroker) return new MemoryResultBackend(options);
  return undefined;
}

/** A rate-limiter backend on a Redis broker's Redis, so limits, barriers and group callbacks span its processes. */
export function rateLimiterBackendFor(broker: Broker): RateLimiterBackend | undefined {
  return broker instanceof RedisBroker ? new RedisRateLimiterBackend(broker.connection) : undefined;
}

/** A main thread's defaults: the environment's URLs, else the broker's own service, else this process. */
const mainThread: slots.ProcessDefaults = {
  broker: () => createBroker(),
  resultBackend() {
    const url = process.env.TROUPE_RESULTS_URL;
    if (url) return createResultBackend(url);
    const broker = slots.getBroker();
    const own = resultBackendFor(broker);
    if (!own) throw new TroupeError(`no results backend for broker ${broker.displayUrl}: set TROUPE_RESULTS_URL (${supportedSchemes("results").join(", ")})`);
    return own;
  },
  rateLimiterBackend() {
    const url = process.env.TROUPE_RATE_LIMITER_URL;
    if (url) return createRateLimiterBackend(url);
    // Limits need no broker: a process that never made one keeps them in memory rather than connecting for them.
    return (slots.hasBroker() ? rateLimiterBackendFor(slots.getBroker()) : undefined) ?? new MemoryRateLimiterBackend();
  },
};

let wired = false;

/** Install the main thread's defaults once; a worker thread wired by wireWorkerThread keeps its own. */
function wire(): void {
  if (wired) return;
  wired = true;
  slots.installProcessDefaults(mainThread);
  setResultLookup((message, options) => slots.getResultBackend().getResult(message, options));
}

/**
 * Wire a worker thread before it imports the user's modules: its broker is `broker` (enqueues go to the main
 * thread) and cannot be replaced, and results and rate limits are the main thread's, reached over RPC, so that a
 * process holds one connection per service whatever its thread count.
 */
export function wireWorkerThread(broker: Broker): void {
  wired = true;
  slots.lockBroker(broker);
  slots.installProcessDefaults({
    broker: () => broker,
    resultBackend: () => {
      throw new TroupeError("inside an actor, read results with message.getResult(): the backend lives in the main thread");
    },
    rateLimiterBackend: () => new ThreadRateLimiterBackend(),
  });
  setResultLookup((message, options) => callMain("getResult", message.toData(), options));
}

/** The process's broker, created from TROUPE_BROKER_URL on first use. */
export function getBroker(): Broker {
  wire();
  return slots.getBroker();
}

/** Make `broker` the process's broker (ignored inside worker threads, which always use the main thread's). */
export function setBroker(broker: Broker): Broker {
  wire();
  return slots.setBroker(broker);
}

/** The process's results backend: TROUPE_RESULTS_URL, else the broker's own service. */
export function getResultBackend(): ResultBackend {
  wire();
  return slots.getResultBackend();
}

export function setResultBackend(backend: ResultBackend): ResultBackend {
  wire();
  return slots.setResultBackend(backend);
}

/** The process's rate-limiter backend: TROUPE_RATE_LIMITER_URL, else a Redis broker's Redis, else memory. */
export function getRateLimiterBackend(): RateLimiterBackend {
  wire();
  return slots.getRateLimiterBackend();
}

export function setRateLimiterBackend(backend: RateLimiterBackend): RateLimiterBackend {
  wire();
  return slots.setRateLimiterBackend(backend);
}

/**
 * Reach the backends the environment names (TROUPE_RESULTS_URL, TROUPE_RATE_LIMITER_URL) or the actor modules set,
 * so that one that is down fails a worker's boot with its redacted URL instead of failing each message's result or
 * limit later. Backends on the broker's own service are left to connect on first use: the broker is up.
 */
export async function connectBackends(): Promise<void> {
  wire();
  const held = slots.heldBackends();
  const results = process.env.TROUPE_RESULTS_URL ? slots.getResultBackend() : held.resultBackend;
  const limits = process.env.TROUPE_RATE_LIMITER_URL ? slots.getRateLimiterBackend() : held.rateLimiterBackend;
  await Promise.all([results?.connect?.(), limits?.connect?.()]);
}

/** Close the backends the process created (a worker calls this on shutdown so that no connection lingers). */
export function closeBackends(): Promise<void> {
  return slots.closeBackends();
}
