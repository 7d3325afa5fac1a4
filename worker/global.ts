import type { Broker } from "./broker.js";
import { TroupeError } from "./errors.js";
import type { RateLimiterBackend } from "./rate-limits/backend.js";
import type { ResultBackend } from "./results/backend.js";

/**
 * How an empty slot is filled on first use. worker/setup.ts installs it (from the environment in a main thread,
 * through the main thread in a worker thread); this module knows no transport, so that the middleware and rate
 * limiters reading the slots stay below the code that builds brokers and backends.
 */
export interface ProcessDefaults {
  broker(): Broker;
  resultBackend(): ResultBackend;
  rateLimiterBackend(): RateLimiterBackend;
}

let defaults: ProcessDefaults | undefined;
let broker: Broker | undefined;
let brokerLocked = false;
let resultBackend: ResultBackend | undefined;
let rateLimiterBackend: RateLimiterBackend | undefined;

export function installProcessDefaults(next: ProcessDefaults): void {
  defaults = next;
}

function wired(): ProcessDefaults {
  if (!defaults) throw new TroupeError('nothing is wired in this process yet: call setBroker(createBroker(url)) (from "troupe") first, or pass a backend explicitly');
  return defaults;
}

/** Make `next` this thread's broker; ignored inside worker threads, which always use the main thread's. */
export function setBroker(next: Broker): Broker {
  if (!brokerLocked) broker = next;
  return broker ?? next;
}

/** Used by worker threads: fix the broker so that user modules cannot replace it. */
export function lockBroker(next: Broker): void {
  broker = next;
  brokerLocked = true;
}

export function getBroker(): Broker {
  broker ??= wired().broker();
  return broker;
}

export function hasBroker(): boolean {
  return broker !== undefined;
}

export function setResultBackend(next: ResultBackend): ResultBackend {
  resultBackend = next;
  return next;
}

export function getResultBackend(): ResultBackend {
  resultBackend ??= wired().resultBackend();
  return resultBackend;
}

export function setRateLimiterBackend(next: RateLimiterBackend): RateLimiterBackend {
  rateLimiterBackend = next;
  return next;
}

export function getRateLimiterBackend(): RateLimiterBackend {
  rateLimiterBackend ??= wired().rateLimiterBackend();
  return rateLimiterBackend;
}

/** The backends the slots hold now (none is created). */
export function heldBackends(): { resultBackend?: ResultBackend; rateLimiterBackend?: RateLimiterBackend } {
  return { resultBackend, rateLimiterBackend };
}

/** Empty the backend slots (the next use creates them again) and close what they held. */
export async function closeBackends(): Promise<void> {
  const held = [resultBackend, rateLimiterBackend];
  resultBackend = undefined;
  rateLimiterBackend = undefined;
  await Promise.all(held.map((backend) => backend?.close?.()));
}
