import { fork } from "node:child_process";
import { once } from "node:events";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Message } from "troupe";
import { offer } from "./offer.js";
import { PUBLISH_OPTIONS, rawAmqpPublisher } from "./raw-amqp.js";
import { rawRedisClient } from "./raw-redis.js";
import type { BrokerKind } from "./settings.js";
import { percentile } from "./stats.js";

const consumerScript = join(dirname(fileURLToPath(import.meta.url)), "raw-latency-consumer.js");

export interface RawLatency {
  offered: number;
  samples: number;
  toStart: { p50: number; p99: number };
}

/**
 * The latency ceiling for a broker: the same offered rate, producer and batching as the Troupe latency figure,
 * through a bare client (Redis: RPUSH pipelined per tick, then BLMOVE/LMOVE and LREM with the worker's prefetch;
 * RabbitMQ: persistent publishes confirmed per tick, then consume and ack with that prefetch), with the consumer
 * in a process of its own. Its p99 is what this machine and broker allow before any Troupe code runs.
 */
export async function rawLatency(kind: BrokerKind, url: string, queue: string, rate: number, seconds: number, prefetch: number): Promise<RawLatency> {
  const total = Math.max(10, Math.round(rate * seconds));
  const body = (sentAt: number) => new Message({ queueName: queue, actorName: "bench_noop", args: ["raw-latency", sentAt] }).encode();
  const producer = kind === "redis" ? await redisProducer(url, queue, body) : await amqpProducer(url, queue, body);
  const consumer = fork(consumerScript, [kind, url, queue, String(prefetch), String(total)], { stdio: ["ignore", "ignore", "inherit", "ipc"] });
  try {
    const exited = once(consumer, "exit").then(([code]) => {
      throw new Error(`raw latency consumer exited early (code ${code})`);
    });
    const reply = (): Promise<unknown> => Promise.race([once(consumer, "message").then(([m]) => m as unknown), exited]);
    await reply();
    const latencies = reply();
    await offer(rate, total, producer.send);
    const values = (await latencies) as number[];
    return { offered: rate, samples: values.length, toStart: { p50: percentile(values, 50), p99: percentile(values, 99) } };
  } finally {
    consumer.kill();
    await producer.close();
  }
}

interface RawProducer {
  send: (count: number, sentAt: number) => Promise<unknown>;
  close: () => Promise<void>;
}

async function redisProducer(url: string, key: string, body: (sentAt: number) => string): Promise<RawProducer> {
  const { redis, close } = rawRedisClient(url, key);
  await redis.del(key);
  return {
    send: (count, sentAt) => {
      const pipeline = redis.pipeline();
      const text = body(sentAt);
      for (let i = 0; i < count; i++) pipeline.rpush(key, text);
      return pipeline.exec();
    },
    close,
  };
}

async function amqpProducer(url: string, queue: string, body: (sentAt: number) => string): Promise<RawProducer> {
  const { channel, close } = await rawAmqpPublisher(url, queue);
  return {
    send: (count, sentAt) => {
      const content = Buffer.from(body(sentAt));
      for (let i = 0; i < count; i++) channel.sendToQueue(queue, content, PUBLISH_OPTIONS);
      return channel.waitForConfirms();
    },
    close,
  };
}
