import { createBroker, Message } from "troupe";
import { Redis } from "ioredis";
import { Session } from "node:inspector/promises";
import { writeFileSync } from "node:fs";
process.env.TROUPE_REDIS_NAMESPACE = "exp-enq-" + process.pid;
const N = Number(process.argv[2] ?? 20000);
const broker = createBroker("redis://127.0.0.1:6379");
await broker.connect();
const msg = () => new Message({ queueName: "expq", actorName: "bench_noop", args: ["enqueue"] });
for (let i = 0; i < 2000; i++) await broker.enqueue(msg());
const session = process.env.EXP_PROF ? new Session() : undefined;
if (session) { session.connect(); await session.post("Profiler.enable"); await session.post("Profiler.setSamplingInterval", { interval: 100 }); await session.post("Profiler.start"); }
let t0 = performance.now();
for (let i = 0; i < N; i++) await broker.enqueue(msg());
const troupe = N / (performance.now() - t0) * 1000;
if (session) { const { profile } = await session.post("Profiler.stop"); writeFileSync(process.env.EXP_PROF, JSON.stringify(profile)); }
const r = new Redis("redis://127.0.0.1:6379");
const body = msg().encode();
t0 = performance.now();
for (let i = 0; i < N; i++) await r.rpush("exp-enq-raw", body);
const raw = N / (performance.now() - t0) * 1000;
console.log(`troupe ${troupe.toFixed(0)} msg/s, raw ${raw.toFixed(0)} msg/s, ${(100 * troupe / raw).toFixed(0)}%`);
await r.del("exp-enq-raw"); await broker.purge("expq"); await broker.close(); r.disconnect();
