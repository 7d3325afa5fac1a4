import type { Channel } from "amqplib";
import { BrokerError, ConnectionClosed, TroupeError } from "../../errors.js";
import { dqName, qName, xqName } from "../../queues.js";
import { parseDeliveryLimit, parseQueueType, type QueueType } from "./url.js";

/** Dramatiq's default `x-message-ttl` of `q.XQ`: dead letters are kept for 7 days. */
export const DEFAULT_DEAD_MESSAGE_TTL = 604_800_000;

export interface TopologyOptions {
  /** `x-max-priority` of `q` and `q.DQ`; absent unless configured, as in Dramatiq. */
  maxPriority?: number;
  /** `x-message-ttl` of `q.XQ` in ms. */
  deadMessageTtl: number;
  /** Dramatiq's classic queues, or replicated quorum queues (`x-queue-type: quorum`). */
  queueType: QueueType;
  /** `x-delivery-limit` of a quorum `q`: deliveries after which RabbitMQ dead-letters a message (a poison message). */
  deliveryLimit?: number;
}

export interface QueueDeclaration {
  name: string;
  arguments: Record<string, string | number>;
}

/** Check options the way Dramatiq does, so that a bad value fails at construction and not at the first declare. */
export function validateTopology(options: TopologyOptions): TopologyOptions {
  const { maxPriority, deadMessageTtl, queueType, deliveryLimit } = options;
  if (queueType === "quorum" && maxPriority !== undefined) {
    throw new TroupeError(
      `maxPriority (${maxPriority}) cannot be used with quorum queues: RabbitMQ 3.x quorum queues have no x-max-priority and deliver in publish order; use a separate queue for urgent work, or classic queues`,
    );
  }
  if (deliveryLimit !== undefined && queueType !== "quorum") {
    throw new TroupeError(`deliveryLimit (${deliveryLimit}) needs quorum queues (queueType "quorum"): classic queues do not count deliveries`);
  }
  if (deliveryLimit !== undefined && (!Number.isInteger(deliveryLimit) || deliveryLimit < 1)) {
    throw new TroupeError(`deliveryLimit must be a positive integer, got ${deliveryLimit}`);
  }
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

/** The queue type from TROUPE_RABBITMQ_QUEUE_TYPE; unset means Dramatiq's classic queues. */
export function queueTypeFromEnv(env: NodeJS.ProcessEnv = process.env): QueueType | undefined {
  const raw = env.TROUPE_RABBITMQ_QUEUE_TYPE;
  return raw ? parseQueueType(raw, (why) => new TroupeError(`TROUPE_RABBITMQ_QUEUE_TYPE ${why}`)) : undefined;
}

/** `x-delivery-limit` from TROUPE_RABBITMQ_DELIVERY_LIMIT (quorum queues only). */
export function deliveryLimitFromEnv(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.TROUPE_RABBITMQ_DELIVERY_LIMIT;
  return raw ? parseDeliveryLimit(raw, (why) => new TroupeError(`TROUPE_RABBITMQ_DELIVERY_LIMIT ${why}`)) : undefined;
}

function integerFromEnv(env: NodeJS.ProcessEnv, name: string, min: number, max: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === "") return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) throw new TroupeError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  return value;
}

/**
 * The three server queues of a canonical queue. Classic queues get Dramatiq's exact arguments: RabbitMQ refuses a
 * redeclaration with other arguments (PRECONDITION_FAILED), so any difference here would lock Python workers out,
 * or us. Quorum queues add `x-queue-type`, and on `q` and `q.DQ` (the queues that dead-letter) the `at-least-once`
 * dead-letter strategy, which RabbitMQ only honours with `x-overflow: reject-publish` — without it a dead letter is
 * dropped when the target's leader is unavailable. The delivery limit goes on `q` only: `q.DQ` holds delayed
 * messages unacked until their eta and hands them back on every reconnect, which is no sign of a poison message.
 */
export function queueDeclarations(queue: string, options: TopologyOptions): QueueDeclaration[] {
  const canonical = qName(queue);
  const quorum = options.queueType === "quorum";
  const deadLettered: Record<string, string | number> = quorum
    ? { "x-queue-type": "quorum", "x-dead-letter-exchange": "", "x-dead-letter-routing-key": xqName(canonical), "x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish" }
    : { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": xqName(canonical) };
  if (options.maxPriority !== undefined) deadLettered["x-max-priority"] = options.maxPriority;
  const main = options.deliveryLimit === undefined ? deadLettered : { ...deadLettered, "x-delivery-limit": options.deliveryLimit };
  const dead: Record<string, string | number> = quorum ? { "x-queue-type": "quorum", "x-message-ttl": options.deadMessageTtl } : { "x-message-ttl": options.deadMessageTtl };
  return [
    { name: canonical, arguments: main },
    { name: dqName(canonical), arguments: { ...deadLettered } },
    { name: xqName(canonical), arguments: dead },
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
    /** A fresh channel for a probe that RabbitMQ may refuse by closing it. */
    private readonly scratch: () => Promise<Channel>,
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

  forgetAll(): void {
    this.declared.clear();
    this.ready.clear();
  }

  private async declare(canonical: string): Promise<void> {
    const channel = await this.channel();
    const declarations = queueDeclarations(canonical, this.options);
    for (const [index, { name, arguments: args }] of declarations.entries()) {
      try {
        await channel.assertQueue(name, { durable: true, exclusive: false, autoDelete: false, arguments: args });
      } catch (err) {
        if ((err as { code?: number }).code === 406) throw await this.refusal(canonical, index, err as Error);
        throw new ConnectionClosed(`could not declare queue ${name}: ${(err as Error).message}`, { cause: err });
      }
    }
  }

  /**
   * Explain a PRECONDITION_FAILED. RabbitMQ names the first argument that differs, never the queue type, so when
   * the declaration of the other type goes through (a no-op on an existing queue: it matches) the queue is of
   * that type, and the error says so. A queue's type cannot change; it is never deleted or re-declared for you.
   */
  private async refusal(canonical: string, index: number, err: Error): Promise<BrokerError> {
    const name = queueDeclarations(canonical, this.options)[index]!.name;
    const ours = this.options.queueType;
    const other: QueueType = ours === "quorum" ? "classic" : "quorum";
    const probe = queueDeclarations(canonical, { deadMessageTtl: this.options.deadMessageTtl, queueType: other })[index]!;
    if (await this.probe(probe)) {
      return new BrokerError(
        `queue ${name} exists as a ${other} queue, but this broker declares ${ours} queues (queueType / TROUPE_RABBITMQ_QUEUE_TYPE / ?queue_type=); RabbitMQ cannot change the type of a queue: keep the queue type every producer and worker of ${canonical} uses, or drain and delete the queue before switching`,
        { cause: err },
      );
    }
    return new BrokerError(
      `RabbitMQ refused to declare ${ours} queue ${name}: it exists with other arguments (${err.message}); every producer and worker of a queue must agree on the queue type, maxPriority, the delivery limit and the dead message TTL`,
      { cause: err },
    );
  }

  /** Whether a declaration is accepted, on a channel of its own (a refusal closes the channel it ran on). */
  private async probe({ name, arguments: args }: QueueDeclaration): Promise<boolean> {
    const channel = await this.scratch();
    channel.on("error", () => undefined);
    try {
      await channel.assertQueue(name, { durable: true, exclusive: false, autoDelete: false, arguments: args });
      await channel.close();
      return true;
    } catch {
      return false;
    }
  }
}
