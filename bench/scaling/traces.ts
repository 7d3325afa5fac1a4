/**
 * Arrival traces for the scaling simulation (docs/bench.md, "Scaling simulation"): per-second counts of messages
 * sent ready and of messages sent with a delay, drawn from a seeded generator so a seed always gives the same trace.
 */

/** Messages sent at one second with an eta: they wait in the delay queue until `eta` (seconds from the start). */
export interface DelayedSend {
  at: number;
  eta: number;
  count: number;
}

export interface Trace {
  name: string;
  title: string;
  seconds: number;
  /** Messages sent ready in each second. */
  arrivals: number[];
  delayed: DelayedSend[];
}

/** mulberry32: small, fast and good enough for arrival noise; the same seed gives the same sequence. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A Poisson draw by Knuth's product of uniforms, in slices of mean ≤ 30 so e^-mean never underflows. */
export function poisson(random: () => number, mean: number): number {
  let count = 0;
  for (let left = mean; left > 0; left -= 30) {
    const limit = Math.exp(-Math.min(left, 30));
    let product = random();
    while (product > limit) {
      count++;
      product *= random();
    }
  }
  return count;
}

/** Poisson arrivals at the rate `rate(t)` (messages per second) for each second of the trace. */
function arrivals(random: () => number, seconds: number, rate: (t: number) => number): number[] {
  return Array.from({ length: seconds }, (_, t) => poisson(random, Math.max(0, rate(t))));
}

/** The four traces of issue 22: steady, a burst, a diurnal curve with spikes, a long delayed backlog. */
export function traces(seed = 1): Trace[] {
  const random = seededRandom(seed);
  const hour = 3600;
  const steady: Trace = { name: "steady", title: "steady 20 msg/s for an hour", seconds: hour, arrivals: arrivals(random, hour, () => 20), delayed: [] };
  const burst: Trace = {
    name: "burst",
    title: "2 msg/s, and 20,000 messages sent within 20 s at minute 10",
    seconds: hour,
    arrivals: arrivals(random, hour, (t) => 2 + (t >= 600 && t < 620 ? 1000 : 0)),
    delayed: [],
  };
  // A day squeezed into four hours: a night trough of 2 msg/s, a midday peak of 40, and five one-minute spikes.
  const day = 4 * hour;
  const spikes = Array.from({ length: 5 }, () => Math.floor(random() * (day - 120)));
  const diurnal: Trace = {
    name: "diurnal",
    title: "a day in four hours (2 to 40 msg/s) with five one-minute spikes of +60 msg/s",
    seconds: day,
    arrivals: arrivals(random, day, (t) => 21 - 19 * Math.cos((2 * Math.PI * t) / day) + (spikes.some((s) => t >= s && t < s + 60) ? 60 : 0)),
    delayed: [],
  };
  // A campaign scheduled ahead: 36,000 messages sent at minute 1 with etas spread over minutes 10 to 40, over a
  // trickle of 1 msg/s sent ready.
  const delayedCount = 36_000;
  const delayed: DelayedSend[] = [];
  for (let eta = 600; eta < 2400; eta++) delayed.push({ at: 60, eta, count: delayedCount / 1800 });
  const delayedBacklog: Trace = {
    name: "delayed",
    title: "36,000 messages sent at minute 1 with etas over minutes 10–40, over 1 msg/s sent ready",
    seconds: hour,
    arrivals: arrivals(random, hour, () => 1),
    delayed,
  };
  return [steady, burst, diurnal, delayedBacklog];
}
