// In-process throughput probe: node .exp/run.mjs [messages] [threads]
import { readFileSync, readdirSync } from "node:fs";
import { Redis } from "ioredis";
import { createBroker, setBroker, Worker, Message, setLogLevel } from "troupe";
const N = Number(process.argv[2] ?? 60000), threads = Number(process.argv[3] ?? 8);
const url = process.env.EXP_URL ?? "redis://127.0.0.1:6379";
process.env.TROUPE_REDIS_NAMESPACE ??= "exp-" + process.pid;

const broker = createBroker(url);
setBroker(broker);
const { noop } = await import("./actors.mjs");
const queue = process.env.EXP_QUEUE ?? "exp";
await broker.connect();
await broker.purge(queue);
const body = () => new Message({ queueName: queue, actorName: "exp_noop", args: [] });
for (let i = 0; i < N; i += 1000) await broker.enqueueMany(Array.from({ length: Math.min(1000, N - i) }, body));
const amqp = url.startsWith("amqp");
const r = new Redis(amqp ? "redis://127.0.0.1:6379" : url);
const stats = async () => Object.fromEntries((await r.info("commandstats")).split("\n").filter((l) => l.startsWith("cmdstat_")).map((l) => [l.split(":")[0], Number(/calls=(\d+)/.exec(l)[1])]));
import { execSync } from "node:child_process";
const redisPid = execSync(amqp ? "pgrep -f beam.smp | head -1" : "pgrep -x redis-server | head -1").toString().trim();
const rcpu = () => { const s = readFileSync(`/proc/${redisPid}/stat`, "utf8"); const f = s.slice(s.lastIndexOf(")") + 2).split(" "); return (Number(f[11]) + Number(f[12])) * 10; };
const cpu = () => Object.fromEntries(readdirSync("/proc/self/task").map((t) => { const s = readFileSync(`/proc/self/task/${t}/stat`, "utf8"); const f = s.slice(s.lastIndexOf(")") + 2).split(" "); const name = readFileSync(`/proc/self/task/${t}/comm`, "utf8").trim(); return [`${t}:${name}`, (Number(f[11]) + Number(f[12])) * 10]; }));
const worker = new Worker(broker, { modules: [new URL("./actors.mjs", import.meta.url).pathname], threads, queues: [queue], prefetch: process.env.EXP_PREFETCH ? Number(process.env.EXP_PREFETCH) : undefined, lookahead: process.env.EXP_LOOKAHEAD ? Number(process.env.EXP_LOOKAHEAD) : undefined });
const s0 = await stats();
import { Session } from "node:inspector/promises";
import { writeFileSync } from "node:fs";
const session = process.env.EXP_PROF ? new Session() : undefined;
if (session) { session.connect(); await session.post("Profiler.enable"); await session.post("Profiler.setSamplingInterval", { interval: 100 }); }
await worker.start();
if (session && process.env.EXP_HEAP) await session.post("HeapProfiler.startSampling", { samplingInterval: 256, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
else if (session) await session.post("Profiler.start");
const r0 = rcpu(); const c0 = cpu(); const t0 = performance.now();
await new Promise((res) => { const t = setInterval(() => { if (worker.stats.processed >= N) { clearInterval(t); res(); } }, 5); });
console.log("posts", globalThis.__posts, "items", globalThis.__items, "ms", globalThis.__postMs);
const ms = performance.now() - t0; const c1 = cpu(); const r1 = rcpu(); const s1 = await stats();
if (session && process.env.EXP_HEAP) { const { profile } = await session.post("HeapProfiler.stopSampling"); writeFileSync(process.env.EXP_PROF, JSON.stringify(profile)); }
else if (session) { const { profile } = await session.post("Profiler.stop"); writeFileSync(process.env.EXP_PROF, JSON.stringify(profile)); }
console.log(`${N} msgs in ${ms.toFixed(0)} ms = ${Math.round(N / ms * 1000)} msg/s`);
const per = {}; for (const k of Object.keys(c1)) { const [tid, name] = k.split(":"); const d = c1[k] - (c0[k] ?? 0); const key = tid == process.pid ? "main" : "+" + (tid - process.pid); if (d) per[key] = (per[key] ?? 0) + d; }
const us = (v) => +(v * 1000 / N).toFixed(1);
const others = Object.entries(per).filter(([k]) => k !== "main").sort((a, b) => b[1] - a[1]);
console.log(`cpu µs/msg: redis ${us(r1 - r0)}, main ${us(per.main)}, other threads ${us(others.reduce((a, [, v]) => a + v, 0))} (${others.slice(0, 14).map(([k, v]) => k + "=" + us(v)).join(" ")})`);
if (process.env.EXP_REDIS_STATS)
console.log("redis calls/msg:", Object.fromEntries(Object.keys(s1).filter((k) => s1[k] - (s0[k] ?? 0) > 0).map((k) => [k, +((s1[k] - (s0[k] ?? 0)) / N).toFixed(3)])));
if (process.env.EXP_THREAD_HEAP) await new Promise((r) => setTimeout(r, 3000));
await worker.stop(); await broker.purge(queue); await broker.close(); r.disconnect();

process.exit(0);
