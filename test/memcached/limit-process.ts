/**
 * One of the processes sharing a ConcurrentRateLimiter on memcached:
 * `node limit-process.js <memcached url> <limiter key> <limit> <rounds>`. Each holder counts itself in
 * `<key>:holders` while it holds the limit; the process prints the most holders it ever saw and its acquisitions.
 */
import { ConcurrentRateLimiter, MemcachedRateLimiterBackend } from "troupe";
import { RawMemcached } from "./raw.js";

const [url, key, limit, rounds] = process.argv.slice(2) as [string, string, string, string];
const backend = new MemcachedRateLimiterBackend({ url });
const limiter = new ConcurrentRateLimiter(key, { backend, limit: Number(limit) });
const holders = `${key}:holders`;
const port = Number(/:(\d+)$/.exec(url)?.[1] ?? 11211);
const raw = await RawMemcached.open(port);
await backend.add(holders, 0, 60_000);
let most = 0;
let acquired = 0;
await Promise.all(
  Array.from({ length: 4 }, async () => {
    for (let i = 0; i < Number(rounds); i++) {
      await limiter.acquire(
        async () => {
          acquired++;
          // incr with a maximum beyond reach always applies; its outcome is not needed, the count is read back.
          await backend.incr(holders, 1, Number.MAX_SAFE_INTEGER, 60_000);
          const seen = Number((await raw.get(holders))?.value.toString().trim() ?? 0);
          most = Math.max(most, seen);
          await new Promise((resolve) => setTimeout(resolve, 2));
          await backend.decr(holders, 1, 0);
        },
        { wait: 30_000 },
      );
    }
  }),
);
process.stdout.write(`${JSON.stringify({ most, acquired })}\n`);
await backend.close();
raw.close();
