import { once } from "node:events";
import { connect, type Channel, type ChannelModel, type ConfirmChannel } from "amqplib";
import { wallNow } from "./clock.js";
import type { RawFigures, RawLoopOptions, RawSender } from "./raw-redis.js";
import { perSecond, RateMeter, timed } from "./stats.js";

export const PUBLISH_OPTIONS = { persistent: true, contentType: "application/json" };

async function openPublisher(connection: ChannelModel, queue: string): Promise<ConfirmChannel> {
  const publisher = await connection.createConfirmChannel();
  await publisher.assertQueue(queue, { durable: true });
  return publisher;
}

/** A confirm channel to a durable queue on a connection of its own; `close` deletes the queue and disconnects. */
export async function rawAmqpPublisher(url: string, queue: string): Promise<{ channel: ConfirmChannel; close(): Promise<void> }> {
  const connection = await connect(url);
  const channel = await openPublisher(connection, queue);
  return {
    channel,
    close: async () => {
      await channel.deleteQueue(queue).catch(() => undefined);
      await connection.close().catch(() => undefined);
    },
  };
}

/**
 * A persistent publish without a confirm (Dramatiq's default publisher): done once amqplib took it, after a drain
 * when the socket's buffer is full.
 */
export async function rawAmqpUnconfirmedSender(url: string, queue: string, body: Buffer): Promise<RawSender> {
  const connection = await connect(url);
  const channel: Channel = await connection.createChannel();
  await channel.assertQueue(queue, { durable: true });
  return {
    send: () => (channel.sendToQueue(queue, body, PUBLISH_OPTIONS) ? Promise.resolve() : once(channel, "drain")),
    close: async () => {
      await channel.deleteQueue(queue).catch(() => undefined);
      await connection.close().catch(() => undefined);
    },
  };
}

/** A persistent publish to a durable queue, each confirmed before the next. */
export async function rawAmqpSender(url: string, queue: string, body: Buffer): Promise<RawSender> {
  const { channel, close } = await rawAmqpPublisher(url, queue);
  return {
    send: () =>
      new Promise<void>((resolve, reject) => {
        channel.sendToQueue(queue, body, PUBLISH_OPTIONS, (err) => (err ? reject(err) : resolve()));
      }),
    close,
  };
}

/**
 * The ceiling for the RabbitMQ broker: persistent publishes on a confirm channel to a durable queue, confirmed a
 * batch at a time, then one consumer with the worker's prefetch acking each delivery as it arrives.
 */
export async function rawAmqp(url: string, queue: string, body: Buffer, { messages, batchSize, prefetch }: RawLoopOptions): Promise<RawFigures> {
  const connection = await connect(url);
  try {
    const publisher = await openPublisher(connection, queue);
    const batchedMs = await timed(async () => {
      for (let sent = 0; sent < messages; sent += batchSize) {
        for (let i = sent; i < Math.min(messages, sent + batchSize); i++) publisher.sendToQueue(queue, body, PUBLISH_OPTIONS);
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
    return { batchedEnqueue: perSecond(messages, batchedMs), processing: meter.rate };
  } finally {
    await connection.close().catch(() => undefined);
  }
}
