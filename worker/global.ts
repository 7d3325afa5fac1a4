import type { Broker } from "./broker.js";

/**
 * The process-wide (per-thread) broker. Inside a worker thread it is a proxy to the main thread's broker;
 * elsewhere it is created on first use from TROUPE_BROKER_URL (default: the in-memory broker).
 */
let current: Broker | undefined;
let factory: (() => Broker) | undefined;

let locked = false;

/** Make this thread's broker the global one; ignored inside worker threads, which always use the main thread's. */
export function setBroker(broker: Broker): Broker {
  if (!locked) current = broker;
  return current ?? broker;
}

/** Used by worker threads: fix the global broker so user modules cannot replace it. */
export function lockBroker(broker: Broker): void {
  current = broker;
  locked = true;
}

/** Installed by brokers/factory.ts so that this module stays free of transport imports. */
export function setBrokerFactory(next: () => Broker): void {
  factory = next;
}

export function getBroker(): Broker {
  if (!current) {
    if (!factory) throw new Error("no broker: call setBroker() or import 'troupe' to get the default broker");
    current = factory();
  }
  return current;
}

export function hasBroker(): boolean {
  return current !== undefined;
}
