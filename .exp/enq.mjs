import { Redis } from "ioredis";
import { Message, createBroker } from "troupe";
const N = Number(process.argv[2] ?? 20000);
process.env.TROUPE_REDIS_NAMESPACE = "enqexp";
const b = createBroker("redis://127.0.0.1:6379");
const r = new Redis();
const q = "enqexp_q";
const mk = () => new Message({ queueName: q, actorName: "bench_noop", args: ["x"] });
const body = mk().encode();
await b.enqueue(mk());
for (let round = 0; round < 3; round++) {
  let t = performance.now();
  for (let i = 0; i < N; i++) await r.rpush("enqexp:raw", body);
  const raw = N / (performance.now() - t) * 1000;
  t = performance.now();
  for (let i = 0; i < N; i++) await b.enqueue(mk());
  const single = N / (performance.now() - t) * 1000;
  t = performance.now();
  for (let i = 0; i < N; i += 1000) await b.enqueueMany(Array.from({ length: 1000 }, mk));
  const batched = N / (performance.now() - t) * 1000;
  console.log(`raw ${raw.toFixed(0)} single ${single.toFixed(0)} (${(single / raw * 100).toFixed(0)}%) batched ${batched.toFixed(0)}`);
  await b.purge(q); await r.del("enqexp:raw");
}
const keys = await r.keys("enqexp*"); if (keys.length) await r.del(...keys);
await b.close(); await r.quit();
