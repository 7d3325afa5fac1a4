import { Redis } from "ioredis";
const N = Number(process.argv[2] ?? 30000);
const r = new Redis(); const body = "x".repeat(300);
await r.rpush("enqexp:raw", body);
const c0 = process.cpuUsage(); const t = performance.now();
for (let i = 0; i < N; i++) await r.rpush("enqexp:raw", body);
const ms = performance.now() - t; const c = process.cpuUsage(c0);
console.log(`raw ${(N / ms * 1000).toFixed(0)} msg/s; client CPU ${((c.user + c.system) / N).toFixed(1)} us/msg, wall ${(ms * 1000 / N).toFixed(1)} us/msg`);
await r.del("enqexp:raw"); await r.quit();
