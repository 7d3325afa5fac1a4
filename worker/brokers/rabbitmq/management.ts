import { BrokerError, TroupeError } from "../../errors.js";
import { redactUrl } from "../../logging.js";

export interface ManagedQueue {
  name: string;
  ready: number;
  unacked: number;
}

/** Cumulative message counts of a queue since it was declared (what throughput is computed from). */
export interface QueueCounters {
  /** Deliveries acked: on `q`, messages a worker finished (including those it retried). */
  acked: number;
  /** Messages published to it: on `q.XQ`, messages dead-lettered. */
  published: number;
}

/** A consumer registered on a queue, as the management API lists it. */
export interface ManagedConsumer {
  queue: string;
  tag: string;
  /** The client's address and connection name, as RabbitMQ shows it. */
  connection: string;
  prefetch: number;
}

/**
 * The few calls Troupe makes to RabbitMQ's management HTTP API: queue depths including unacked counts, which AMQP
 * cannot report, and the list of queues. Its figures are refreshed by RabbitMQ every few seconds.
 */
export class ManagementClient {
  private readonly base: string;
  private readonly authorization: string | undefined;
  readonly displayUrl: string;

  /** `url` like `http://user:pass@host:15672`; the vhost is the AMQP connection's. */
  constructor(
    url: string,
    private readonly vhost: string,
    private readonly timeout = 5000,
  ) {
    this.displayUrl = redactUrl(url);
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new TroupeError(`the RabbitMQ management URL ${this.displayUrl} is not a valid URL (expected http(s)://user:pass@host:15672)`);
    }
    if (parsed.username) {
      this.authorization = `Basic ${Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString("base64")}`;
    }
    parsed.username = "";
    parsed.password = "";
    this.base = parsed.toString().replace(/\/+$/, "");
  }

  /** The queue's counts, or undefined when it does not exist. */
  async queue(name: string): Promise<ManagedQueue | undefined> {
    const body = (await this.get(`/api/queues/${encodeURIComponent(this.vhost)}/${encodeURIComponent(name)}`)) as Record<string, unknown> | undefined;
    return body && toQueue(body);
  }

  async queues(): Promise<ManagedQueue[]> {
    const body = (await this.get(`/api/queues/${encodeURIComponent(this.vhost)}?columns=name,messages_ready,messages_unacknowledged`)) as Record<string, unknown>[] | undefined;
    return (body ?? []).map(toQueue);
  }

  /** The queue's cumulative counters, or undefined when it does not exist. */
  async counters(name: string): Promise<QueueCounters | undefined> {
    const body = (await this.get(`/api/queues/${encodeURIComponent(this.vhost)}/${encodeURIComponent(name)}?columns=message_stats`)) as { message_stats?: Record<string, unknown> } | undefined;
    if (!body) return undefined;
    return { acked: Number(body.message_stats?.ack ?? 0), published: Number(body.message_stats?.publish ?? 0) };
  }

  async consumers(): Promise<ManagedConsumer[]> {
    const body = (await this.get(`/api/consumers/${encodeURIComponent(this.vhost)}`)) as Record<string, unknown>[] | undefined;
    return (body ?? []).map((c) => {
      const queue = c.queue as { name?: unknown } | undefined;
      const channel = c.channel_details as { connection_name?: unknown } | undefined;
      return {
        queue: String(queue?.name ?? ""),
        tag: String(c.consumer_tag ?? ""),
        connection: String(channel?.connection_name ?? ""),
        prefetch: Number(c.prefetch_count ?? 0),
      };
    });
  }

  private async get(path: string): Promise<unknown> {
    let response: Response;
    try {
      response = await fetch(this.base + path, {
        headers: this.authorization ? { authorization: this.authorization } : {},
        signal: AbortSignal.timeout(this.timeout),
      });
    } catch (err) {
      throw new BrokerError(`RabbitMQ management API at ${this.displayUrl} is unreachable: ${(err as Error).message}`, { cause: err });
    }
    if (response.status === 404) return undefined;
    if (!response.ok) throw new BrokerError(`RabbitMQ management API at ${this.displayUrl} answered ${response.status} for ${path}`);
    return response.json();
  }
}

function toQueue(body: Record<string, unknown>): ManagedQueue {
  return { name: String(body.name), ready: Number(body.messages_ready ?? 0), unacked: Number(body.messages_unacknowledged ?? 0) };
}
