// node .exp/lat.mjs <redis|rabbitmq> <rate> [seconds] [processes]
import { randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Redis } from "ioredis";
import { Message, createBroker } from "troupe";
import { Tally } from "../dist/bench/tally.js";
import { WorkerProcess } from "../dist/bench/worker-process.js";
import { wallNow } from "../dist/bench/clock.js";
const [kind = "redis", rateS = "10000", secS = "3", procS = "1"] = process.argv.slice(2);
const rate = Number(rateS), seconds = Number(secS);
const runId = randomBytes(4).toString("hex");
const namespace = `troupe-bench-${runId}`;
process.env.TROUPE_REDIS_NAMESPACE = namespace;
process.env.TROUPE_LOG_LEVEL ??= "warning";
const redis = new Redis("redis://127.0.0.1:6379");
const tally = new Tally(redis, `troupe-bench:${runId}`);
const url = kind === "redis" ? "redis://127.0.0.1:6379" : "amqp://guest:guest@127.0.0.1:5672";
const queue = `bench_${runId}_${kind}`;
const broker = createBroker(url);
const env = { BENCH_TALLY_URL: "redis://127.0.0.1:6379", BENCH_TALLY_KEY: tally.key, TROUPE_REDIS_NAMESPACE: namespace, BENCH_CPU_ITERATIONS: "1000", ...(process.env.EXP_WENV ? JSON.parse(process.env.EXP_WENV) : {}) };
await tally.forgetWorkers();
const worker = new WorkerProcess({ brokerUrl: url, processes: Number(procS), threads: 8, prefetch: 104, queue, env });
await tally.waitForBoot(Number(procS), 30000);
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]; };
async function run(phase, total) {
  const start = wallNow(); let sent = 0; const sends = [];
  while (sent < total) {
    const due = Math.min(total, Math.floor(((wallNow() - start) * rate) / 1000) + 1);
    if (due > sent) { const at = wallNow(); sends.push(broker.enqueueMany(Array.from({ length: due - sent }, () => new Message({ queueName: queue, actorName: "bench_noop", args: [phase, at] })))); sent = due; }
    await sleep(1);
  }
  await Promise.all(sends);
  await tally.waitFor(phase, total, 30000, phase);
  return tally.samples(phase);
}
await run("warm", Math.round(rate * 1));
const s = await run("lat", Math.round(rate * seconds));
const st = s.map((x) => x.toStart);
console.log(`${kind} rate ${rate}: n=${st.length} toStart p50 ${pct(st, 50).toFixed(2)} p90 ${pct(st, 90).toFixed(2)} p99 ${pct(st, 99).toFixed(2)} max ${pct(st, 100).toFixed(2)} ms`);
await worker.stop(tally.waitForStop(Number(procS), 30000));
await broker.purge(queue).catch(() => {}); await broker.close(); await tally.clear(); 
const keys = await redis.keys(`${namespace}*`); if (keys.length) await redis.del(...keys);
await redis.quit();
