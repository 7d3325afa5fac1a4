/**
 * The actors of `troupe demo`. A worker imports this module in its main thread (to learn the actors and their
 * options) and in every worker thread (to run them).
 */
import { actor, getCurrentMessage } from "troupe";

/** Wait without blocking the thread: an async actor overlaps with others when `--concurrency` > 1. */
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export const greet = actor("greet", (name: string) => `hello, ${name}`, { queue: "demo", storeResults: true });

export const add = actor("add", (a: number, b: number) => a + b, { queue: "demo", storeResults: true });

export const multiply = actor("multiply", (factor: number, value: number) => factor * value, { queue: "demo", storeResults: true });

export const format = actor("format", (total: number) => `total = ${total}`, { queue: "demo", storeResults: true });

export const square = actor("square", (x: number) => x * x, { queue: "demo", storeResults: true });

export const fetchPage = actor(
  "fetch_page",
  async (page: number) => {
    await pause(5);
    return { page, items: 10 };
  },
  { queue: "demo" },
);

/** Fails on its first two attempts, then succeeds: shows retries with exponential backoff and jitter. */
export const flaky = actor(
  "flaky",
  (id: number) => {
    const retries = Number(getCurrentMessage()?.options.retries ?? 0);
    if (retries < 2) throw new Error(`flaky ${id}: transient failure on attempt ${retries + 1}`);
    return id;
  },
  { queue: "demo", maxRetries: 5, minBackoff: 100, maxBackoff: 400, storeResults: true },
);

export class PaymentDeclined extends Error {}

/** Always fails: after its retries the message ends in the dead-letter queue. */
export const charge = actor(
  "charge",
  (card: string) => {
    throw new PaymentDeclined(`card ${card} declined`);
  },
  { queue: "demo", maxRetries: 1, minBackoff: 100, maxBackoff: 200, storeResults: true },
);

/** Never retried: `throws` lists errors that dead-letter at once. */
export const validate = actor(
  "validate",
  (order: { id: string; qty: number }) => {
    if (order.qty <= 0) throw new RangeError(`order ${order.id}: quantity must be positive`);
    return order.id;
  },
  { queue: "demo", throws: [RangeError] },
);

export const groupDone = actor("group_done", (label: string) => `group ${label} finished`, { queue: "demo", storeResults: true });
