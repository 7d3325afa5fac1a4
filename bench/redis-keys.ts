import type { Redis } from "ioredis";

/** Delete every key matching `pattern` with SCAN + DEL (only ever the bench's own prefixes). */
export async function deleteKeys(redis: Redis, pattern: string): Promise<void> {
  for await (const keys of redis.scanStream({ match: pattern, count: 1000 }) as AsyncIterable<string[]>) {
    if (keys.length) await redis.del(...keys);
  }
}
