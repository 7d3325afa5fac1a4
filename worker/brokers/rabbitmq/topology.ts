import type { Channel } from "amqplib";
import { BrokerError, ConnectionClosed, TroupeError } from "../../errors.js";
import { dqName, qName, xqName } from "../../queues.js";

/** Dramatiq's default `x-message-ttl` of `q.XQ`: dead letters are kept for 7 days. */
export const DEFAULT_DEAD_MESSAGE_TTL = 604_800_000;

export interface TopologyOptions {
  /** `x-max-priority` of `q` and `q.DQ`; absent unless configured, as in Dramatiq. */
  maxPriority?: number;
  /** `x-message-ttl` of `q.XQ` in ms. */
  deadMessageTtl: number;
}

export interface QueueDeclaration {
  name: string;
  arguments: Record<string, string | number>;
}

/** Check options the way Dramatiq does, so that a bad value fails at construction and not at the first declare. */
export function validateTopology(options: TopologyOptions): TopologyOptions {
  const { maxPriority, deadMessageTtl } = options;
  if (maxPriority !== undefined && (!Number.isInteger(maxPriority) || maxPriority < 1 || maxPriority > 255)) {
    throw new TroupeError(`maxPriority must be an integer from 1 to 255, got ${maxPriority}`);
  }
  if (!Number.isInteger(deadMessageTtl) || deadMessageTtl < 0) {
    throw new TroupeError(`the dead message TTL must be a non-negative integer of ms, got ${deadMessageTtl}`);
  }
  return options;
}

/** The dead-message TTL Dramatiq reads from `dramatiq_dead_message_ttl`, so both sides declare `q.XQ` alike. */
export function deadMessageTtlFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  return integerFromEnv(env, "dramatiq_dead_message_ttl", 0, Number.MAX_SAFE_INTEGER) ?? DEFAULT_DEAD_MESSAGE_TTL;
}

/** `x-max-priority` from TROUPE_RABBITMQ_MAX_PRIORITY, for workers started by the CLI. */
export function maxPriorityFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  return integerFromEnv(env, "TROUPE_RABBITMQ_MAX_PRIORITY", 1, 255);
}

function integerFromEnv(env: NodeJS.ProcessEnv, name: string, min: number, max: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new TroupeError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  return value;
}

/**
 * The three server queues of a canonical queue with Dramatiq's exact arguments. RabbitMQ refuses a redeclaration
 * with other arguments (PRECONDITION_FAILED), so any difference here would lock Python workers out, or us.
 */
export function queueDeclarations(queue: string, options: TopologyOptions): QueueDeclaration[] {
  const canonical = qName(queue);
  const deadLettered: Record<string, string | number> = { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": xqName(canonical) };
  if (options.maxPriority !== undefined) deadLettered["x-max-priority"] = options.maxPriority;
  return [
    { name: canonical, arguments: deadLettered },
    { name: dqName(canonical), arguments: { ...deadLettered } },
    { name: xqName(canonical), arguments: { "x-message-ttl": options.deadMessageTtl } },
  ];
}

/** Declares each canonical queue's server queues once per broker; `forget` makes the next use declare again. */
export class Topology {
  private readonly declared = new Map<string, Promise<void>>();
  /** Canonical queues whose declaration completed, so that publishing needs no await per message. */
  private readonly ready = new Set<string>();

  constructor(
    readonly options: TopologyOptions,
    private readonly channel: () => Promise<Channel>,
  ) {}

  ensure(queue: string): Promise<void> {
    const canonical = qName(queue);
    let declaring = this.declared.get(canonical);
    if (!declaring) {
      const attempt = this.declare(canonical);
      declaring = attempt;
      this.declared.set(canonical, attempt);
      attempt.then(
        () => this.declared.get(canonical) === attempt && this.ready.add(canonical),
        () => this.declared.get(canonical) === attempt && this.declared.delete(canonical),
      );
    }
    return declaring;
  }

  isDeclared(queue: string): boolean {
    return this.ready.has(qName(queue));
  }

  /** Called when a queue turned out missing (deleted at runtime): the next use declares it again. */
  forget(queue: string): void {
    this.declared.delete(qName(queue));
    this.ready.delete(qName(queue));
  }

  private async declare(canonical: string): Promise<void> {
    const channel = await this.channel();
    for (const { name, arguments: args } of queueDeclarations(canonical, this.options)) {
      try {
        await channel.assertQueue(name, { durable: true, exclusive: false, autoDelete: false, arguments: args });
      } catch (err) {
        if ((err as { code?: number }).code === 406) {
          throw new BrokerError(
            `RabbitMQ refused to declare queue ${name}: it exists with other arguments (${(err as Error).message}); every producer and worker of a queue must agree on maxPriority and the dead message TTL`,
            { cause: err },
          );
        }
        throw new ConnectionClosed(`could not declare queue ${name}: ${(err as Error).message}`, { cause: err });
      }
    }
  }
}
