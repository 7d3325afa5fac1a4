import type { Redis } from "ioredis";
import { connectRedis } from "../../redis/connection.js";
import { withDeadLetterScripts, type DeadLetterCommands } from "../../redis/scripts.js";

/** A connection of the console's tools (dead letters, waiting messages) with their scripts, connected on first use. */
export abstract class ConsoleRedisClient {
  private readonly client: Redis & DeadLetterCommands;
  private connecting: Promise<void> | undefined;

  constructor(
    client: Redis,
    protected readonly namespace: string,
    /** For errors only (redacted). */
    private readonly url?: string,
  ) {
    this.client = withDeadLetterScripts(client);
  }

  protected async ready(): Promise<Redis & DeadLetterCommands> {
    this.connecting ??= connectRedis(this.client, this.url);
    await this.connecting;
    return this.client;
  }

  async close(): Promise<void> {
    await this.client.quit().catch(() => this.client.disconnect());
  }
}
