// node .exp/rawlat.mjs <rate> [seconds]  — raw amqplib: producer here, consumer in a child process
import { fork } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import amqp from "amqplib";
const url = "amqp://guest:guest@127.0.0.1:5672";
const q = process.env.RAWLAT_Q ?? (process.env.RAWLAT_Q = `rawlat-${process.pid}`);
if (process.argv[2] === "consume") {
  const c = await amqp.connect(url); const ch = await c.createChannel(); await ch.prefetch(104);
  const lat = []; const total = Number(process.argv[3]);
  await ch.consume(q, (m) => { const t = performance.timeOrigin + performance.now(); lat.push(t - Number(m.content.toString())); ch.ack(m); if (lat.length === total) { process.send(lat); setTimeout(() => process.exit(0), 50); } });
  process.send("ready");
} else {
  const rate = Number(process.argv[2] ?? 7000), seconds = Number(process.argv[3] ?? 3);
  const c = await amqp.connect(url); const ch = await c.createConfirmChannel(); await ch.assertQueue(q, { durable: true });
  const total = Math.round(rate * seconds);
  const child = fork(new URL(import.meta.url).pathname, ["consume", String(total)]);
  const result = new Promise((r) => child.on("message", (m) => { if (m !== "ready") r(m); }));
  await new Promise((r) => child.once("message", r));
  const now = () => performance.timeOrigin + performance.now();
  const start = now(); let sent = 0; const sends = [];
  while (sent < total) {
    const due = Math.min(total, Math.floor(((now() - start) * rate) / 1000) + 1);
    if (due > sent) { const at = String(now()); for (let i = sent; i < due; i++) ch.publish("", q, Buffer.from(at), { persistent: true }); sends.push(ch.waitForConfirms()); sent = due; }
    await sleep(1);
  }
  await Promise.all(sends);
  const lat = await result;
  const s = lat.sort((a, b) => a - b); const p = (x) => s[Math.min(s.length - 1, Math.floor(x / 100 * s.length))].toFixed(2);
  console.log(`raw amqp rate ${rate}: n=${s.length} p50 ${p(50)} p90 ${p(90)} p99 ${p(99)} max ${p(100)} ms`);
  await ch.deleteQueue(q); await c.close();
}
