import { connect } from "amqplib";
import { readFileSync } from "node:fs";
import { execSync } from "node:child_process";
const N = Number(process.argv[2] ?? 60000), prefetch = Number(process.argv[3] ?? 104), mode = process.argv[4] ?? "each";
const beam = execSync("pgrep -f beam.smp | head -1").toString().trim();
const cpu = (pid) => { const s = readFileSync(`/proc/${pid}/stat`, "utf8"); const f = s.slice(s.lastIndexOf(")") + 2).split(" "); return (Number(f[11]) + Number(f[12])) * 10; };
const c = await connect("amqp://guest:guest@127.0.0.1:5672");
const pub = await c.createConfirmChannel();
const q = "exp-raw-" + process.pid;
const args = process.env.DLX ? { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": q + ".XQ" } : {};
await pub.assertQueue(q, { durable: true, arguments: args });
const body = Buffer.from(JSON.stringify({ queue_name: "exp", actor_name: "exp_noop", args: [], kwargs: {}, options: {}, message_id: "0b1e4a2c-6a8e-4c55-9c39-4f2b8e2a1d11", message_timestamp: Date.now() }));
for (let i = 0; i < N; i += 1000) { for (let j = 0; j < 1000; j++) pub.sendToQueue(q, body, { persistent: true, contentType: "application/json" }); await pub.waitForConfirms(); }
await new Promise((r) => setTimeout(r, Number(process.env.WAIT ?? 500)));
const ch = await c.createChannel();
await ch.prefetch(prefetch);
const b0 = cpu(beam), m0 = cpu(process.pid), t0 = performance.now();
let n = 0, last;
await new Promise((resolve) => ch.consume(q, (d) => { n++; last = d;
  if (mode === "each") ch.ack(d);
  else if (mode === "multi" && n % 26 === 0) ch.ack(d, true);
  else if (mode === "immediate") { if (!globalThis.sched) { globalThis.sched = true; setImmediate(() => { globalThis.sched = false; ch.ack(last, true); }); } }
  if (n === N) { if (mode !== "each") ch.ack(d, true); resolve(); } }));
const ms = performance.now() - t0;
console.log(`${mode} prefetch ${prefetch}: ${Math.round(N / ms * 1000)} msg/s, beam ${((cpu(beam) - b0) * 1000 / N).toFixed(1)} µs/msg, client ${((cpu(process.pid) - m0) * 1000 / N).toFixed(1)} µs/msg`);
await pub.deleteQueue(q); await c.close();
