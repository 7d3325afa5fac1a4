import { Queue, Worker, type ConnectionOptions } from "bullmq";
import { wallNow } from "./clock.js";
import { RateMeter } from "./stats.js";

/** BullMQ's connection settings for a redis:// URL (its workers need maxRetriesPerRequest: null). */
function connectionFor(url: string): ConnectionOptions {
  const parsed = new URL(url);
  return {
    host: parsed.hostname,
    port: Number(parsed.port || 6379),
    password: parsed.password ? decodeURIComponent(parsed.password) : undefined,
    db: parsed.pathname.length > 1 ? Number(parsed.pathname.slice(1)) : 0,
    maxRetriesPerRequest: null,
  };
}

/**
 * The peer figure: BullMQ on the same Redis running a no-op job processor with `concurrency`, jobs removed on
 * completion as Troupe removes acked messages. Processing msg/s from the first completion to the last, after
 * `warmup` jobs processed first and not counted (as Troupe's workers get).
 */
export async function bullmqNoop(url: string, prefix: string, messages: number, warmup: number, batchSize: number, concurrency: number): Promise<number> {
  const connection = connectionFor(url);
  const name = `noop-c${concurrency}`;
  const queue = new Queue(name, { connection, prefix });
  let worker: Worker | undefined;
  try {
    const total = warmup + messages;
    for (let added = 0; added < total; added += batchSize) {
      const count = Math.min(batchSize, total - added);
      await queue.addBulk(Array.from({ length: count }, () => ({ name: "noop", data: {}, opts: { removeOnComplete: true, removeOnFail: true } })));
    }
    const meter = new RateMeter();
    let warmed = 0;
    await new Promise<void>((resolve, reject) => {
      worker = new Worker(name, async () => undefined, { connection, prefix, concurrency });
      worker.on("completed", () => {
        if (warmed < warmup) return void warmed++;
        meter.tick(wallNow());
        if (meter.count === messages) resolve();
      });
      worker.on("failed", (_job, err) => reject(err));
      worker.on("error", reject);
    });
    return meter.rate;
  } finally {
    await worker?.close();
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
}
