/** Dramatiq's `compute_backoff`, bit for bit, so retried messages spread out exactly as Python workers do. */
export interface BackoffOptions {
  /** Base delay, ms (Dramatiq's `factor`, default 5). */
  factor?: number;
  jitter?: boolean;
  /** Largest delay, ms (default 2 000). */
  maxBackoff?: number;
  maxExponent?: number;
}

/** Returns `[attempts + 1, delay in ms]`, as Dramatiq does. */
export function computeBackoff(attempts: number, { factor = 5, jitter = true, maxBackoff = 2000, maxExponent = 32 }: BackoffOptions = {}): [number, number] {
  const base = factor * 2 ** Math.min(attempts, maxExponent);
  if (!jitter) return [attempts + 1, Math.min(base, maxBackoff)];
  let backoff = Math.trunc(base * uniform(1, 2));
  if (backoff > maxBackoff) backoff = Math.trunc(maxBackoff * uniform(0.5, 1));
  return [attempts + 1, backoff];
}

function uniform(low: number, high: number): number {
  return low + Math.random() * (high - low);
}
