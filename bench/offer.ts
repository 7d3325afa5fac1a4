import { setTimeout as sleep } from "node:timers/promises";
import { wallNow } from "./clock.js";

/**
 * Send `total` messages at `rate` msg/s without waiting for one send before the next: each timer tick sends the
 * messages that became due since the last one in one batch (an enqueueMany; a pipeline in the raw loops), stamped with the time of that send, as a busy
 * producer batches. Sending them one by one would cost the producer (this process, on the same cores) about as
 * much CPU as the worker spends on them, and the latency figure would measure the machine's saturation instead.
 */
export async function offer(rate: number, total: number, send: (count: number, sentAt: number) => Promise<unknown>): Promise<void> {
  const start = wallNow();
  const sends: Promise<unknown>[] = [];
  let sent = 0;
  let failure: unknown;
  while (sent < total && failure === undefined) {
    const due = Math.min(total, Math.floor(((wallNow() - start) * rate) / 1000) + 1);
    if (due > sent) {
      sends.push(send(due - sent, wallNow()).catch((err) => (failure ??= err)));
      sent = due;
    }
    await sleep(1);
  }
  await Promise.all(sends);
  if (failure !== undefined) throw failure;
}
