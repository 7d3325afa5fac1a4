import type { Redis } from "ioredis";
import { asBrokerError } from "../../redis/connection.js";
import type { BrokerCommands } from "../../redis/scripts.js";

/** Most ARGV entries one script call gets (ids, or id/value pairs); bigger batches are split. */
const MAX_ARGS_PER_CALL = 2000;

export interface FetchedDelivery {
  id: string;
  /** Undefined when the id was listed but its body is gone from the hash. */
  body: Buffer | undefined;
}

/**
 * Calls the broker scripts for one namespace as one worker id, with Dramatiq's argument order
 * (`now`, queue, worker id, …). Every call also refreshes this worker's heartbeat on the server.
 */
export class Dispatch {
  constructor(
    readonly client: Redis & BrokerCommands,
    readonly namespace: string,
    readonly workerId: string,
    /** How long dead letters live; their reasons expire with them. */
    readonly deadMessageTtl: number,
  ) {}

  private async run<T>(what: string, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (err) {
      throw asBrokerError(err, `redis ${what} failed`);
    }
  }

  /** Run `call` over `items` in chunks that keep each script's ARGV bounded; the chunks share one pipeline. */
  private chunked<T>(items: T[], perItem: number, call: (chunk: T[]) => Promise<unknown>): Promise<unknown> {
    const size = Math.max(1, Math.floor(MAX_ARGS_PER_CALL / perItem));
    if (items.length <= size) return call(items);
    const calls: Promise<unknown>[] = [];
    for (let i = 0; i < items.length; i += size) calls.push(call(items.slice(i, i + size)));
    return Promise.all(calls);
  }

  enqueue(queue: string, entries: [id: string, body: string][]): Promise<unknown> {
    return this.run(`enqueue on ${queue}`, () =>
      this.chunked(entries, 2, (chunk) => this.client.troupeEnqueue(this.namespace, Date.now(), queue, this.workerId, ...chunk.flat())),
    );
  }

  async fetch(queue: string, count: number): Promise<FetchedDelivery[]> {
    const reply = await this.run(`fetch from ${queue}`, () => this.client.troupeFetchBuffer(this.namespace, Date.now(), queue, this.workerId, count));
    if (reply.length === 0) return [];
    const [ids, bodies] = reply;
    return ids.map((id, i) => ({ id: id.toString(), body: bodies[i] ?? undefined }));
  }

  ack(queue: string, ids: string[]): Promise<unknown> {
    return this.run(`ack on ${queue}`, () => this.chunked(ids, 1, (chunk) => this.client.troupeAck(this.namespace, Date.now(), queue, this.workerId, ...chunk)));
  }

  nack(queue: string, entries: [id: string, reason: string][]): Promise<unknown> {
    return this.run(`nack on ${queue}`, () =>
      this.chunked(entries, 2, (chunk) => this.client.troupeNack(this.namespace, Date.now(), queue, this.workerId, this.deadMessageTtl, ...chunk.flat())),
    );
  }

  /** Dead-letter a body found in the queue list in place of an id, keeping its bytes under `deadLetterId`. */
  deadLetterListedBody(queue: string, listed: string, deadLetterId: string, reason: string): Promise<unknown> {
    return this.run(`dead-lettering on ${queue}`, () =>
      this.client.troupeDeadLetterListedBody(this.namespace, Date.now(), queue, this.workerId, listed, deadLetterId, reason, this.deadMessageTtl),
    );
  }

  requeue(queue: string, ids: string[]): Promise<unknown> {
    return this.run(`requeue on ${queue}`, () =>
      this.chunked(ids, 1, (chunk) => this.client.troupeRequeue(this.namespace, Date.now(), queue, this.workerId, ...chunk)),
    );
  }

  /** Atomically replace a delay-queue delivery by a publication on the canonical queue; false if not owned. */
  async promote(delayQueue: string, oldId: string, newId: string, body: string): Promise<boolean> {
    const moved = await this.run(`promote from ${delayQueue}`, () =>
      this.client.troupePromote(this.namespace, Date.now(), delayQueue, this.workerId, oldId, newId, body),
    );
    return moved === 1;
  }

  purge(queue: string): Promise<number> {
    return this.run(`purge of ${queue}`, () => this.client.troupePurge(this.namespace, Date.now(), queue, this.workerId));
  }

  /** Recover dead workers' deliveries of `queue` and expire old dead letters; returns how many were requeued. */
  maintenance(queue: string, heartbeatTimeout: number, deadMessageTtl: number, maxUnpack: number): Promise<number> {
    return this.run(`maintenance of ${queue}`, () =>
      this.client.troupeMaintenance(this.namespace, Date.now(), queue, this.workerId, heartbeatTimeout, deadMessageTtl, maxUnpack),
    );
  }

  heartbeat(): Promise<unknown> {
    return this.run("heartbeat", () => this.client.zadd(this.heartbeatsKey, Date.now(), this.workerId));
  }

  /** Ids in this worker's ack set for `queue`. */
  ackSetMembers(queue: string): Promise<string[]> {
    return this.run(`read of the ack set of ${queue}`, () => this.client.smembers(this.ackSetKey(queue)));
  }

  get heartbeatsKey(): string {
    return `${this.namespace}:__heartbeats__`;
  }

  ackSetKey(queue: string, workerId = this.workerId): string {
    return `${this.namespace}:__acks__.${workerId}.${queue}`;
  }
}
