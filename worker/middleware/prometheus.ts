import type { Broker } from "../broker.js";
import type { Message } from "../message.js";
import { ChurnMap } from "../churn.js";
import { messageTally, workerMetrics } from "../metrics/metrics.js";
import { unwatchQueues, watchQueues } from "../metrics/queue-gauge.js";
import type { MessageProxy } from "../proxy.js";
import { isDelayQueue } from "../queues.js";
import type { Middleware, ProcessOutcome, WorkerInfo } from "./middleware.js";

type Labels = { queue_name: string; actor_name: string };

function labelsOf(message: Pick<Message, "queueName" | "actorName">): Labels {
  return { queue_name: message.queueName, actor_name: message.actorName };
}

/**
 * Dramatiq's Prometheus metrics (names, labels and buckets of SPEC §7) plus Troupe's `troupe_queue_messages`.
 * The exporter is not started here: `troupe worker` serves the registry (aggregated across its processes).
 * Differences from Dramatiq: a retry is counted once, when it is published to the delay queue (Dramatiq also
 * counts its promotion); the delayed gauge goes down, with the labels it went up with, when the message is
 * promoted by this process.
 */
export class Prometheus implements Middleware {
  private readonly started = new ChurnMap<MessageProxy, number>();
  private readonly delayed = new Map<string, Labels>();

  afterWorkerBoot(broker: Broker, worker: WorkerInfo): void {
    watchQueues(broker, worker.queues);
  }

  afterWorkerShutdown(broker: Broker): void {
    unwatchQueues(broker);
    for (const labels of this.delayed.values()) workerMetrics().delayedMessagesInProgress.dec(labels);
    this.delayed.clear();
  }

  afterEnqueue(_broker: Broker, message: Message): void {
    if (!isDelayQueue(message.queueName)) this.forgetDelayed(message.messageId); // a promotion to `q`
    else if (message.options.retries !== undefined) workerMetrics().messageRetries.inc(labelsOf(message));
  }

  beforeDelayMessage(_broker: Broker, message: MessageProxy): void {
    const labels = labelsOf(message);
    this.delayed.set(message.messageId, labels);
    workerMetrics().delayedMessagesInProgress.inc(labels);
  }

  beforeProcessMessage(_broker: Broker, message: MessageProxy): void {
    if (this.delayed.size) this.forgetDelayed(message.messageId);
    messageTally(message.queueName, message.actorName).inProgress++;
    this.started.set(message, performance.now());
  }

  afterProcessMessage(_broker: Broker, message: MessageProxy, { exception, durationMs }: ProcessOutcome): void {
    const started = this.started.get(message);
    if (started === undefined) return;
    this.started.delete(message);
    const tally = messageTally(message.queueName, message.actorName);
    tally.inProgress--;
    tally.processed++;
    if (exception !== undefined) tally.errors++;
    // Dramatiq's meaning: from when the actor starts. The thread measures that; the main thread's clock also
    // counts the time a message waited behind another on its thread, and is the fallback for one that never ran.
    workerMetrics().messageDuration.observe(tally.labels, durationMs ?? performance.now() - started);
  }

  afterSkipMessage(broker: Broker, message: MessageProxy): void {
    this.afterProcessMessage(broker, message, {});
  }

  afterNack(_broker: Broker, message: MessageProxy): void {
    workerMetrics().messageRejects.inc(labelsOf(message));
  }

  private forgetDelayed(messageId: string): void {
    const labels = this.delayed.get(messageId);
    if (!labels) return;
    this.delayed.delete(messageId);
    workerMetrics().delayedMessagesInProgress.dec(labels);
  }
}
