import type { Redis } from "ioredis";

/**
 * Connections for blocking commands (BLMOVE): one blocked command occupies a whole connection, so each
 * concurrent wait takes its own from the pool, and a few idle ones are kept for the next waits.
 */
export class BlockingConnections {
  private readonly idle: Redis[] = [];
  private readonly open = new Set<Redis>();
  private closed = false;

  constructor(
    private readonly createClient: () => Redis,
    private readonly maxIdle = 4,
  ) {}

  async use<T>(fn: (client: Redis) => Promise<T>): Promise<T> {
    let client = this.idle.pop();
    if (!client) {
      client = this.createClient();
      this.open.add(client);
    }
    try {
      return await fn(client);
    } finally {
      if (this.closed || this.idle.length >= this.maxIdle) {
        this.open.delete(client);
        client.disconnect();
      } else {
        this.idle.push(client);
      }
    }
  }

  close(): void {
    this.closed = true;
    for (const client of this.open) client.disconnect();
    this.open.clear();
    this.idle.length = 0;
  }
}

/** Seconds for a blocking command's timeout; Redis ≥ 6 takes fractions, so sub-second waits are honoured. */
export function blockingSeconds(ms: number): string {
  return (Math.max(1, Math.ceil(ms)) / 1000).toFixed(3);
}
