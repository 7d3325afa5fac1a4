import type { Broker } from "../../broker.js";
import type { Message } from "../../message.js";
import type { Middleware, ProcessOutcome } from "../../middleware/middleware.js";
import type { MessageProxy } from "../../proxy.js";

/** Counts outcomes as a middleware and draws one live progress line (a line per second when not a terminal). */
export class DemoProgress implements Middleware {
  succeeded = 0;
  failed = 0;
  retried = 0;
  deadLettered = 0;
  running = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();

  constructor(private readonly out: NodeJS.WriteStream) {}

  beforeProcessMessage(): void {
    this.running++;
  }

  afterProcessMessage(_broker: Broker, _message: MessageProxy, { exception }: ProcessOutcome): void {
    this.running--;
    if (exception === undefined) this.succeeded++;
    else this.failed++;
  }

  afterSkipMessage(): void {
    this.running--;
  }

  afterEnqueue(_broker: Broker, message: Message): void {
    if (message.options.retries !== undefined && message.queueName.endsWith(".DQ")) this.retried++;
  }

  afterNack(): void {
    this.deadLettered++;
  }

  line(): string {
    const seconds = ((Date.now() - this.startedAt) / 1000).toFixed(1).padStart(5);
    return `[${seconds}s] processed ${String(this.succeeded + this.failed).padStart(5)}  ok ${String(this.succeeded).padStart(5)}  failed ${String(this.failed).padStart(3)}  retried ${String(this.retried).padStart(3)}  dead ${this.deadLettered}  running ${this.running}`;
  }

  start(): void {
    const tty = this.out.isTTY;
    this.timer = setInterval(() => this.out.write(tty ? `\r${this.line()}` : `${this.line()}\n`), tty ? 100 : 1000);
  }

  stop(): void {
    clearInterval(this.timer);
    this.out.write(`${this.out.isTTY ? "\r" : ""}${this.line()}\n`);
  }
}
