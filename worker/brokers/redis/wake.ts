import type { Redis } from "ioredis";
import { getLogger } from "../../logging.js";

const log = getLogger("redis.wake");

/**
 * Wake-ups for idle consumers. Troupe's scripts publish on `<ns>:__wake__.<queue>` when a queue goes from
 * empty to non-empty, so a consumer sleeps between polls without adding latency. Python producers do not
 * publish; consumers still poll with a capped backoff, so their messages are picked up all the same.
 */
export class WakeSubscriber {
  private readonly listeners = new Map<string, Set<() => void>>();
  private client: Redis | undefined;

  constructor(
    private readonly namespace: string,
    private readonly createClient: () => Redis,
  ) {}

  private channel(queue: string): string {
    return `${this.namespace}:__wake__.${queue}`;
  }

  private connection(): Redis {
    if (!this.client) {
      const client = this.createClient();
      client.on("message", (channel: string) => {
        for (const wake of this.listeners.get(channel) ?? []) wake();
      });
      // Publications made while the connection was down are lost: wake everyone to poll once.
      client.on("ready", () => {
        for (const set of this.listeners.values()) for (const wake of set) wake();
      });
      this.client = client;
    }
    return this.client;
  }

  /** Call `wake` on every wake-up for `queue`; returns the unsubscribe function. */
  async subscribe(queue: string, wake: () => void): Promise<() => void> {
    const channel = this.channel(queue);
    let set = this.listeners.get(channel);
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
      const client = this.connection();
      await client.subscribe(channel).catch((err) => log.warn("wake-up subscription failed; the consumer polls instead", { queue, err }));
    }
    set.add(wake);
    return () => {
      set.delete(wake);
      if (set.size === 0) {
        this.listeners.delete(channel);
        void this.client?.unsubscribe(channel).catch(() => undefined);
      }
    };
  }

  close(): void {
    this.client?.disconnect();
    this.client = undefined;
    this.listeners.clear();
  }
}
