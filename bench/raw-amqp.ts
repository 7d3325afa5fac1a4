import { connect } from "amqplib";
import { wallNow } from "./clock.js";
import type { RawFigures, RawLoopOptions } from "./raw-redis.js";
import { perSecond, RateMeter, sequentialRate, timed } from "./stats.js";

/**
 * The ceiling for the RabbitMQ broker: persistent publishes on a confirm channel to a durable queue (each
 * confirmed before the next, or a batch at a time), then one consumer with the worker's prefetch acking each
 * delivery as it arrives.
 */
export async function rawAmqp(url: string, queue: string, body: Buffer, { messages, batchSize, prefetch, sendBudget }: RawLoopOptions): Promise<RawFigures> {
  const connection = await connect(url);
  try {
    const publisher = await connection.createConfirmChannel();
    await publisher.assertQueue(queue, { durable: true });
    const publish = () =>
      new Promise<void>((resolve, reject) => {
        publisher.sendToQueue(queue, body, { persistent: true, contentType: "application/json" }, (err) => (err ? reject(err) : resolve()));
      });
    const singleEnqueue = await sequentialRate(messages, sendBudget, publish);
    await publisher.purgeQueue(queue);
    const batchedMs = await timed(async () => {
      for (let sent = 0; sent < messages; sent += batchSize) {
        for (let i = sent; i < Math.min(messages, sent + batchSize); i++) publisher.sendToQueue(queue, body, { persistent: true, contentType: "application/json" });
        await publisher.waitForConfirms();
      }
    });

    const consumer = await connection.createChannel();
    await consumer.prefetch(prefetch);
    const meter = new RateMeter();
    await new Promise<void>((resolve, reject) => {
      consumer.on("error", reject);
      void consumer
        .consume(queue, (delivery) => {
          if (!delivery) return reject(new Error("raw amqplib loop: consumer cancelled"));
          consumer.ack(delivery);
          meter.tick(wallNow());
          if (meter.count === messages) resolve();
        })
        .catch(reject);
    });
    await publisher.deleteQueue(queue);
    return { singleEnqueue, batchedEnqueue: perSecond(messages, batchedMs), processing: meter.rate };
  } finally {
    await connection.close().catch(() => undefined);
  }
}
