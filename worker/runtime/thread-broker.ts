import { Broker, type ConsumeOptions, type Consumer, type DeadLetter, type EnqueueOptions, type QueueStats } from "../broker.js";
import { TroupeError } from "../errors.js";
import { Message } from "../message.js";
import { callMain } from "./rpc.js";

function unavailable(what: string): never {
  throw new TroupeError(`${what} is not available inside an actor; only enqueueing is`);
}

/** The broker as actor code sees it: enqueues go to the main thread, where middleware and the connection live. */
export class ThreadBroker extends Broker {
  readonly displayUrl = "thread://main";

  constructor() {
    super({ middleware: [] });
  }

  protected async doConnect(): Promise<void> {}
  async close(): Promise<void> {}

  override async enqueueMany(messages: Message[], options: EnqueueOptions = {}): Promise<Message[]> {
    const sent = await callMain("enqueueMany", messages.map((m) => m.toData()), options);
    return sent.map((data) => Message.fromData(data));
  }

  protected async publish(): Promise<Message> {
    return unavailable("publish");
  }
  consume(_queue: string, _options: ConsumeOptions): Consumer {
    return unavailable("consume");
  }
  async purge(): Promise<void> {
    unavailable("purge");
  }
  async queueStats(queue: string): Promise<QueueStats> {
    return callMain("queueStats", queue);
  }
  async listQueues(): Promise<string[]> {
    return unavailable("listQueues");
  }
  async deadLetters(): Promise<DeadLetter[]> {
    return unavailable("deadLetters");
  }
}
