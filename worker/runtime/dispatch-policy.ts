/**
 * Which worker thread gets the next message. Every post to a thread, and every reply, wakes a sleeping thread;
 * with quick actors those wake-ups, not the actors, are what a message costs. So messages of actors known to
 * return quickly are packed onto one thread, as many as fit in a millisecond of its measured work, and travel
 * in one post; messages of other short or unknown actors are spread over the least busy threads, `lookahead`
 * ahead of what each runs, so a thread goes from one to the next without waiting for the main thread; messages
 * of slow actors go only to a thread with a free slot and otherwise wait in the main thread, where the next
 * thread to free a slot takes them. A message that finds no thread free for it asks the pool for another thread.
 */

/** What a thread has on hand, as the main thread counts it. */
export interface ThreadLoad {
  /** Messages sent to it and not finished (running or waiting in its queue). */
  tasks: number;
  /** Their expected run time, summed (ms). */
  backlogMs: number;
  /**
   * Share of the thread's slot time its messages took (run time + PER_MESSAGE_MS each) over the last window the
   * pool measured, 0–1; undefined until one was measured.
   */
  occupancy?: number;
}

export interface DispatchSettings {
  /** Messages a thread runs at once. */
  concurrency: number;
  /** Messages any actor's may wait in a thread's queue. */
  lookahead: number;
}

/** Most work (ms) packed ahead on one thread. */
export const PACK_BUDGET_MS = 1;
/** Most messages waiting in one thread's queue, however quick. */
export const MAX_PACKED = 64;
/**
 * Slowest actor (ms, measured average) whose messages are sent ahead to a thread still running others. Sent
 * ahead, a message saves its thread one round trip to the main thread between two messages — tens of µs, a
 * few hundred on a loaded machine — which matters for a 1 ms actor and not for a 5 ms one; but it waits behind
 * everything ahead of it on that thread while another thread may be idle, and slow actors are the ones that
 * make the wait long: 5 ms CPU actors time-sharing 2 cores run 5–20 ms each, so three sent ahead could wait
 * 60 ms (an idle thread takes one back only after the actor in front has run 2 ms, and that costs two posts).
 * Kept in the main thread they also keep actor-priority order until a thread takes them.
 */
export const LOOKAHEAD_MAX_MS = 2;
/** The thread's own cost of a message (receive, decode, reply), added to the actor's run time. */
const PER_MESSAGE_MS = 0.02;
/**
 * Occupancy every thread must have reached before quick messages that find no room ask for another thread.
 * Without it a drain of no-op messages grew the pool to 3–5 threads (prefetch 104, a millisecond's budget of
 * about 40 per thread) while each thread was busy a fifth of the time: quick messages wait for room in the main
 * thread because of the budget, not because the threads are saturated.
 */
export const GROW_OCCUPANCY = 0.5;

/** The run time (ms) to count for a message of an actor with this measured average (undefined: never seen). */
export function expectedMs(averageMs: number | undefined): number {
  // An actor never seen counts as a full budget: nothing is packed behind it until it has been measured.
  return averageMs === undefined ? PACK_BUDGET_MS : averageMs + PER_MESSAGE_MS;
}

/** Whether messages of this kind may be packed (never with `lookahead` 0: strict priority order). */
function packable(expected: number, settings: DispatchSettings): boolean {
  return settings.lookahead > 0 && expected < PACK_BUDGET_MS;
}

function fitsPacked(load: ThreadLoad, expected: number, settings: DispatchSettings): boolean {
  return load.tasks < settings.concurrency + MAX_PACKED && load.backlogMs / settings.concurrency + expected <= PACK_BUDGET_MS;
}

/** Messages of this kind a thread may hold beyond those it runs, packing aside. */
function lookaheadFor(expected: number, settings: DispatchSettings): number {
  return expected < LOOKAHEAD_MAX_MS ? settings.lookahead : 0;
}

function hasRoom(load: ThreadLoad, expected: number, settings: DispatchSettings): boolean {
  return load.tasks < settings.concurrency + lookaheadFor(expected, settings) || (packable(expected, settings) && fitsPacked(load, expected, settings));
}

/** Most messages of this kind the pool may hold (running or queued in threads) with `threads` threads. */
export function capacityFor(expected: number, threads: number, settings: DispatchSettings): number {
  const ahead = lookaheadFor(expected, settings);
  return threads * (settings.concurrency + (packable(expected, settings) ? Math.max(ahead, MAX_PACKED) : ahead));
}

/**
 * The index of the thread for a message expected to take `expected` ms, or -1 when none has room. `loads` has
 * undefined for threads not taking work (being replaced).
 */
export function pickThread(loads: readonly (ThreadLoad | undefined)[], expected: number, settings: DispatchSettings): number {
  const packing = packable(expected, settings);
  let packed = -1;
  let least = -1;
  for (let i = 0; i < loads.length; i++) {
    const load = loads[i];
    if (!load || !hasRoom(load, expected, settings)) continue;
    if (packing && fitsPacked(load, expected, settings) && (packed < 0 || load.tasks > loads[packed]!.tasks)) packed = i;
    if (least < 0 || load.tasks < loads[least]!.tasks) least = i;
  }
  return packed >= 0 ? packed : least;
}

/**
 * Whether the threads the pool has are not enough for a message, so that it starts another (up to its size):
 * for a quick actor, when no thread has room for it even packed (it would wait in the main thread) and every
 * thread was busy at least GROW_OCCUPANCY of its last measured window; for others, when no thread has a free
 * slot, so it would be sent ahead behind a running actor or wait.
 */
export function wantsAnotherThread(loads: readonly (ThreadLoad | undefined)[], expected: number, settings: DispatchSettings): boolean {
  if (packable(expected, settings)) return pickThread(loads, expected, settings) < 0 && loads.every((load) => !load || (load.occupancy ?? 0) >= GROW_OCCUPANCY);
  for (const load of loads) if (load && load.tasks < settings.concurrency) return false;
  return true;
}
