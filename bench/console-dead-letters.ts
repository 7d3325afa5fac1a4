/**
 * The console's figures on a dead-letter queue of 100,000 letters (docs/bench.md, "Console"): the dashboard's first
 * page (its JSON API and its HTML page, through the real handler over HTTP) and a requeue of every letter, each beside
 * a bare-client reference measured in the same run:
 *
 *   npm run bench -- console [redis|rabbitmq ...]
 *
 * BENCH_DEAD_LETTERS (default 100000) sets the queue's size.
 */
import { once } from "node:events";
import { createServer } from "node:http";
import { connect } from "amqplib";
import { Redis } from "ioredis";
import { Message, RabbitmqBroker, RedisBroker, createDashboard, deadLetterStore, type Broker } from "../worker/index.js";
import { randomBytes } from "node:crypto";
import { deleteKeys } from "./redis-keys.js";

const REDIS_URL = process.env.BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const AMQP_URL = process.env.BENCH_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const uniqueName = (prefix: string) => `${prefix}_${process.pid}_${randomBytes(4).toString("hex")}`;
const COUNT = Number(process.env.BENCH_DEAD_LETTERS ?? 100_000);
const PAGE = 25;
const ROUNDS = 15;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

/** Median over ROUNDS of `fn`, after one untimed call (connections opened, code compiled). */
async function medianMs(fn: () => Promise<unknown>, rounds = ROUNDS): Promise<number> {
  await fn();
  const times: number[] = [];
  for (let i = 0; i < rounds; i++) times.push(await timed(fn));
  return median(times);
}

function body(queue: string, i: number, id?: string): string {
  return new Message({ queueName: queue, actorName: "send_mail", args: [`user-${i}@example.com`, { attempt: i }], options: { retries: 20, ...(id ? { redis_message_id: id } : {}), traceback: "Traceback (most recent call last):\n  ...\nConnectionError: timed out" }, messageId: `m-${i}` }).encode();
}

/** The dashboard's handler on a loopback port, as `troupe dashboard` serves it. */
async function serve(broker: Broker, queue: string): Promise<{ url: string; close: () => Promise<void> }> {
  const dashboard = createDashboard({ broker, queues: [queue], interval: 60_000 });
  const server = createServer(dashboard.handler);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return {
    url,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await dashboard.close();
    },
  };
}

async function get(url: string, accept: string): Promise<void> {
  const res = await fetch(url, { headers: { Accept: accept } });
  if (res.status !== 200) throw new Error(`${url}: ${res.status} ${await res.text()}`);
  await res.arrayBuffer();
}

interface Row {
  broker: string;
  figure: string;
  troupe: string;
  reference: string;
  ratio: string;
  target: string;
}

async function redis(): Promise<Row[]> {
  const ns = uniqueName("dlbench");
  const queue = "mail";
  const client = new Redis(REDIS_URL);
  const broker = new RedisBroker(REDIS_URL, { namespace: ns });
  const xq = `${ns}:${queue}.XQ`;
  try {
    const now = Date.now();
    // COUNT dead letters in Dramatiq's layout, 5,000 per round trip.
    const seed = async () => {
      for (let first = 0; first < COUNT; first += 5000) {
        const pipe = client.pipeline();
        for (let i = first; i < Math.min(COUNT, first + 5000); i++) {
          pipe.hset(`${xq}.msgs`, `r-${i}`, body(queue, i, `r-${i}`));
          pipe.zadd(xq, now - COUNT + i, `r-${i}`);
        }
        await pipe.exec();
      }
    };
    await seed();
    const site = await serve(broker, queue);
    const api = await medianMs(() => get(`${site.url}/api/queues/${queue}/dead?limit=${PAGE}`, "application/json"));
    const page = await medianMs(() => get(`${site.url}/queues/${queue}/dead?limit=${PAGE}`, "text/html"));
    await site.close();
    // The least a page can cost: its ids by rank and their bodies, one client, no decoding, no HTTP.
    const raw = await medianMs(async () => {
      const ids = await client.zrevrange(xq, 0, PAGE - 1);
      await client.hmget(`${xq}.msgs`, ...ids);
    });

    const store = deadLetterStore(broker);
    const requeueMs = await timed(() => store.requeue(queue, {}));
    await store.close();
    const moved = await client.llen(`${ns}:${queue}`);
    if (moved !== COUNT) throw new Error(`requeue moved ${moved} of ${COUNT}`);
    // Reference: the same moves by a bare client, 500 ids a round trip in a MULTI (atomic per batch, as the script is).
    await client.del(`${ns}:${queue}`, `${ns}:${queue}.msgs`);
    await seed();
    const rawMs = await timed(async () => {
      for (;;) {
        const ids = await client.zrange(xq, 0, 499);
        if (ids.length === 0) return;
        const bodies = await client.hmget(`${xq}.msgs`, ...ids);
        const tx = client.multi();
        ids.forEach((id, i) => tx.hset(`${ns}:${queue}.msgs`, id, bodies[i]!));
        tx.rpush(`${ns}:${queue}`, ...ids).zrem(xq, ...ids).hdel(`${xq}.msgs`, ...ids);
        await tx.exec();
      }
    });
    const n = COUNT.toLocaleString("en-US");
    return [
      { broker: "redis", figure: `dashboard: first page of ${PAGE} of ${n} dead letters, JSON API (median of ${ROUNDS})`, troupe: `${api.toFixed(1)} ms`, reference: `bare ZREVRANGE + HMGET of the page ${raw.toFixed(2)} ms`, ratio: `${(api / raw).toFixed(1)}×`, target: `< 200 ms ${api < 200 ? "✓" : "✗"}` },
      { broker: "redis", figure: `dashboard: first page of ${PAGE} of ${n} dead letters, HTML page (median of ${ROUNDS})`, troupe: `${page.toFixed(1)} ms`, reference: "", ratio: "", target: `< 200 ms ${page < 200 ? "✓" : "✗"}` },
      { broker: "redis", figure: `requeue all ${n} dead letters (one script per 500)`, troupe: `${rate(COUNT, requeueMs)} (${(requeueMs / 1000).toFixed(1)} s)`, reference: `bare ZRANGE + HMGET + MULTI per 500 ${rate(COUNT, rawMs)}`, ratio: pct(rawMs / requeueMs), target: "" },
    ];
  } finally {
    await deleteKeys(client, `${ns}:*`);
    await broker.close();
    client.disconnect();
  }
}

async function rabbitmq(): Promise<Row[]> {
  const queue = uniqueName("dlbench");
  const connection = await connect(AMQP_URL);
  const channel = await connection.createConfirmChannel();
  const dead = { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": `${queue}.XQ` };
  await channel.assertQueue(queue, { durable: true, arguments: dead });
  await channel.assertQueue(`${queue}.DQ`, { durable: true, arguments: dead });
  await channel.assertQueue(`${queue}.XQ`, { durable: true });
  const broker = new RabbitmqBroker(AMQP_URL);
  const fill = async () => {
    for (let first = 0; first < COUNT; first += 2000) {
      for (let i = first; i < Math.min(COUNT, first + 2000); i++) channel.sendToQueue(`${queue}.XQ`, Buffer.from(body(queue, i)), { persistent: true });
      await channel.waitForConfirms();
    }
  };
  try {
    await fill();
    const site = await serve(broker, queue);
    const api = await medianMs(() => get(`${site.url}/api/queues/${queue}/dead?limit=${PAGE}`, "application/json"), 5);
    await site.close();
    // Reference: the least a browse can do, on a channel of its own: consume a page with that prefetch, nack it back.
    const browse = await connection.createChannel();
    const raw = await medianMs(async () => {
      await browse.prefetch(PAGE);
      const got: import("amqplib").ConsumeMessage[] = [];
      let done!: () => void;
      const full = new Promise<void>((resolve) => (done = resolve));
      const { consumerTag } = await browse.consume(`${queue}.XQ`, (m) => {
        if (m && got.push(m) === PAGE) done();
      });
      await full;
      await browse.cancel(consumerTag);
      browse.nackAll(true);
    }, 5);
    await browse.close();

    const store = deadLetterStore(broker);
    const requeueMs = await timed(() => store.requeue(queue, {}));
    await store.close();
    const { messageCount } = await channel.checkQueue(queue);
    if (messageCount !== COUNT) throw new Error(`requeue moved ${messageCount} of ${COUNT}`);
    await channel.purgeQueue(queue);
    await fill();
    // Reference: consume, publish with confirm per 200, ack after the confirms, as the store does, by a bare client.
    const mover = await connection.createConfirmChannel();
    await mover.prefetch(200);
    const rawMs = await timed(
      () =>
        new Promise<void>((resolve, reject) => {
          let held: import("amqplib").ConsumeMessage[] = [];
          let moved = 0;
          void mover.consume(`${queue}.XQ`, (m) => {
            if (!m) return;
            held.push(m);
            if (held.length < 200 && moved + held.length < COUNT) return;
            const batch = held;
            held = [];
            for (const d of batch) mover.sendToQueue(queue, d.content, { persistent: true });
            mover.waitForConfirms().then(() => {
              for (const d of batch) mover.ack(d);
              moved += batch.length;
              if (moved === COUNT) resolve();
            }, reject);
          });
        }),
    );
    await mover.close();
    const n = COUNT.toLocaleString("en-US");
    return [
      { broker: "rabbitmq", figure: `dashboard: first page of ${PAGE} of ${n} dead letters, JSON API (median of 5)`, troupe: `${api.toFixed(1)} ms`, reference: `bare consume of ${PAGE} with prefetch ${PAGE} + nack ${raw.toFixed(1)} ms`, ratio: `${(api / raw).toFixed(1)}×`, target: "" },
      { broker: "rabbitmq", figure: `requeue all ${n} dead letters (confirm per 200, then ack)`, troupe: `${rate(COUNT, requeueMs)} (${(requeueMs / 1000).toFixed(1)} s)`, reference: `bare consume + publish, confirms per 200, ack ${rate(COUNT, rawMs)}`, ratio: pct(rawMs / requeueMs), target: "" },
    ];
  } finally {
    await broker.close();
    for (const name of [queue, `${queue}.DQ`, `${queue}.XQ`]) await channel.deleteQueue(name).catch(() => undefined);
    await connection.close();
  }
}

function rate(count: number, ms: number): string {
  return `${Math.round(count / (ms / 1000)).toLocaleString("en-US")} letters/s`;
}

function pct(share: number): string {
  return `${Math.round(share * 100)}%`;
}

/** The console's rows of docs/bench.md, for the brokers named (default both). */
export async function benchConsole(brokers: readonly string[]): Promise<void> {
  const rows: Row[] = [];
  if (brokers.length === 0 || brokers.includes("redis")) rows.push(...(await redis()));
  if (brokers.length === 0 || brokers.includes("rabbitmq")) rows.push(...(await rabbitmq()));
  for (const r of rows) console.log(`| ${r.broker} | console | ${r.figure} | ${r.troupe} | ${r.reference} | ${r.ratio} | ${r.target} |`);
}
