import type { Message } from "./message.js";

/**
 * A fetched message as the worker handles it: the decoded message, where it came from, and its fate so far.
 * Brokers keep what they need for ack/nack in `receipt`.
 */
export class MessageProxy<R = unknown> {
  failed = false;
  /** The error the actor (or a middleware) raised, kept for the results backend and callbacks. */
  exception: unknown = undefined;
  /** Why the message is being dead-lettered, recorded by brokers that can store it. */
  deadLetterReason: string | undefined = undefined;
  /** Set by the TimeLimit middleware: the runtime stops the actor after this many ms. */
  timeLimit: number | undefined = undefined;
  /** Set by the ShutdownNotifications middleware: abort the actor when the worker begins to stop. */
  notifyShutdown = false;

  constructor(
    public message: Message<R>,
    /** The queue this delivery was consumed from (`q` or `q.DQ`). */
    readonly queue: string,
    readonly receipt: unknown,
    readonly redelivered = false,
  ) {}

  get messageId(): string {
    return this.message.messageId;
  }
  get actorName(): string {
    return this.message.actorName;
  }
  get queueName(): string {
    return this.message.queueName;
  }
  get options(): Message["options"] {
    return this.message.options;
  }

  fail(reason?: string): void {
    this.failed = true;
    if (reason !== undefined) this.deadLetterReason = reason;
  }

  stuffException(err: unknown): void {
    this.exception = err;
  }

}
