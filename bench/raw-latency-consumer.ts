/**
 * The consumer half of the raw latency loops (raw-latency.ts), in a process of its own as a worker would be. It
 * does the least a reliable consumer does per message with the worker's prefetch, notes when each message
 * reached it (the raw equivalent of an actor's start), and sends the latencies to its parent.
 *
 * argv: kind (redis | rabbitmq), broker URL, queue or list key, prefetch, messages expected.
 */
import { connect } from "amqplib";
import { Redis } from "ioredis";
import { wallNow } from "./clock.js";
import { ackAndFetch } from "./raw-redis.js";

const [kind, url, queue, prefetchArg, totalArg] = process.argv.slice(2) as [string, string, string, string, string];
const prefetch = Number(prefetchArg);
const total = Number(totalArg);
const latencies: number[] = [];

/** Bodies are Troupe messages stamped like the bench's: args [phase, sentAt]. */
function note(body: string): void {
  const sentAt = (JSON.parse(body) as { args: [string, number] }).args[1];
  latencies.push(wallNow() - sentAt);
}

async function consumeRedis(): Promise<void> {
  const redis = new Redis(url);
  const processing = `${queue}.processing`;
  process.send!("ready");
  let inHand: string[] = [];
  while (latencies.length < total) {
    inHand = await ackAndFetch(redis, queue, processing, inHand, prefetch, 1);
    for (const value of inHand) note(value);
  }
  await redis.del(processing);
  redis.disconnect();
}

async function consumeAmqp(): Promise<void> {
  const connection = await connect(url);
  const channel = await connection.createChannel();
  await channel.prefetch(prefetch);
  let done!: () => void;
  const finished = new Promise<void>((resolve) => (done = resolve));
  await channel.consume(queue, (delivery) => {
    if (!delivery) return;
    note(delivery.content.toString("utf8"));
    channel.ack(delivery);
    if (latencies.length === total) done();
  });
  process.send!("ready");
  await finished;
  await connection.close();
}

await (kind === "redis" ? consumeRedis() : consumeAmqp());
process.send!(latencies, () => process.exit(0));
