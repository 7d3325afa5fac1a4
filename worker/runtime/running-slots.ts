/**
 * Which messages a worker thread is running and since when, in memory shared with the main thread. The main
 * thread reads it to start a time limit when the actor really begins and to tell a running message from one
 * waiting in the thread's queue, so the thread never has to post a "started" message (each post wakes the main
 * thread, and with sync actors that wake-up was the largest cost of a message).
 */
export class RunningSlots {
  /** Task ids (0 = free slot); written with Atomics so a reader never sees an id before its start time. */
  private readonly ids: Int32Array;
  private readonly startedAt: Float64Array;

  constructor(readonly buffer: SharedArrayBuffer) {
    const slots = buffer.byteLength / 12;
    this.startedAt = new Float64Array(buffer, 0, slots);
    this.ids = new Int32Array(buffer, slots * 8, slots);
  }

  static create(slots: number): RunningSlots {
    return new RunningSlots(new SharedArrayBuffer(slots * 12));
  }

  /** Thread side: record that `id` begins now; returns the slot to release when it ends. */
  claim(id: number): number {
    for (let slot = 0; slot < this.ids.length; slot++) {
      if (Atomics.load(this.ids, slot) !== 0) continue;
      this.startedAt[slot] = Date.now();
      Atomics.store(this.ids, slot, id);
      return slot;
    }
    throw new Error("more messages running than the thread has slots");
  }

  /** Main side: when the longest-running of the thread's current messages began, or undefined if it runs none. */
  earliestStart(): number | undefined {
    let earliest: number | undefined;
    for (let slot = 0; slot < this.ids.length; slot++) {
      if (Atomics.load(this.ids, slot) !== 0 && (earliest === undefined || this.startedAt[slot]! < earliest)) earliest = this.startedAt[slot];
    }
    return earliest;
  }

  release(slot: number): void {
    Atomics.store(this.ids, slot, 0);
  }

  /** Main side: when the thread began `id` (Date.now() ms), or undefined if it is not running it now. */
  startTimeOf(id: number): number | undefined {
    for (let slot = 0; slot < this.ids.length; slot++) if (Atomics.load(this.ids, slot) === id) return this.startedAt[slot];
    return undefined;
  }
}

/** Task ids stay positive 31-bit integers so they fit the shared Int32Array. */
export function nextTaskId(id: number): number {
  return id >= 0x7fffffff ? 1 : id + 1;
}
