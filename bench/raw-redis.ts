import { Redis } from "ioredis";
import { perSecond, RateMeter, timed } from "./stats.js";
import { wallNow } from "./clock.js";

/** What the raw loops do: as many messages as the Troupe figures, the worker's prefetch. */
export interface RawLoopOptions {
  messages: number;
  batchSize: number;
  prefetch: number;
}

export interface RawFigures {
  /** Batches of `batchSize` sends per round trip. */
  batchedEnqueue: number;
  /** Fetch, "run", ack, with `prefetch` messages in hand. */
  processing: number;
}

/** The raw one-at-a-time send, measured alternately with Troupe's (see `interleavedRates`). */
export interface RawSender {
  send(): Promise<unknown>;
  /** Delete what the sends left and disconnect. */
  close(): Promise<void>;
}

/** A connection of its own for a raw loop on `key`; `close` deletes the key and disconnects. */
export function rawRedisClient(url: string, key: string): { redis: Redis; close(): Promise<void> } {
  const redis = new Redis(url);
  return {
    redis,
    close: async () => {
      await redis.del(key).catch(() => undefined);
      redis.disconnect();
    },
  };
}

/** One RPUSH per message, as Troupe keeps one list entry per message. */
export function rawRedisSender(url: string, key: string, body: string): RawSender {
  const { redis, close } = rawRedisClient(url, key);
  return { send: () => redis.rpush(key, body), close };
}

/**
 * The ceiling for the Redis broker: the least list work a reliable queue does per message, on one ioredis
 * connection. Enqueue is one RPUSH per message, pipelined a batch per round trip; processing is LMOVE to a
 * processing list (so a crash loses nothing) and LREM from it on ack, pipelined so that each round trip acks the
 * last `prefetch` messages and fetches the next ones.
 */
export async function rawRedis(url: string, key: string, body: string, { messages, batchSize, prefetch }: RawLoopOptions): Promise<RawFigures> {
  const redis = new Redis(url);
  const processingKey = `${key}.processing`;
  try {
    await redis.del(key, processingKey);
    const batchedMs = await timed(async () => {
      for (let sent = 0; sent < messages; sent += batchSize) {
        const pipeline = redis.pipeline();
        for (let i = sent; i < Math.min(messages, sent + batchSize); i++) pipeline.rpush(key, body);
        await pipeline.exec();
      }
    });

    const meter = new RateMeter();
    let inHand: string[] = [];
    while (meter.count < messages) {
      const acked = inHand.length;
      inHand = await ackAndFetch(redis, key, processingKey, inHand, prefetch);
      for (let i = 0; i < acked; i++) meter.tick(wallNow());
      if (inHand.length === 0 && meter.count < messages) throw new Error(`raw Redis loop: queue empty after ${meter.count}/${messages} messages`);
    }
    return { batchedEnqueue: perSecond(messages, batchedMs), processing: meter.rate };
  } finally {
    await redis.del(key, processingKey).catch(() => undefined);
    redis.disconnect();
  }
}

/**
 * One round trip of the raw consumer: LREM (ack) the values in hand from the processing list, then LMOVE up to
 * `prefetch` more onto it — the first one a BLMOVE when `blockSeconds` is given, so that an empty list waits for
 * a push instead of being polled. Returns the values now in hand.
 */
export async function ackAndFetch(redis: Redis, key: string, processingKey: string, inHand: string[], prefetch: number, blockSeconds?: number): Promise<string[]> {
  const pipeline = redis.pipeline();
  for (const value of inHand) pipeline.lrem(processingKey, 1, value);
  for (let i = 0; i < prefetch; i++) {
    if (i === 0 && blockSeconds !== undefined) pipeline.blmove(key, processingKey, "LEFT", "RIGHT", blockSeconds);
    else pipeline.lmove(key, processingKey, "LEFT", "RIGHT");
  }
  const replies = (await pipeline.exec()) ?? [];
  return replies.slice(inHand.length).flatMap(([err, value]) => {
    if (err) throw err;
    return typeof value === "string" ? [value] : [];
  });
}
