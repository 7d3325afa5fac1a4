/**
 * The primitives rate limiters and barriers are built on, with Dramatiq's semantics (its `RateLimiterBackend`),
 * so that Troupe and Python processes sharing a Redis share limits. Keys are used verbatim; values are integers.
 * Durations are ms.
 */
export interface RateLimiterBackend {
  /** Set `key` to `value` only if it does not exist; true when set. */
  add(key: string, value: number, ttl: number): Promise<boolean>;
  /** Add `amount` unless the result would exceed `maximum`; refreshes the TTL; true when changed. */
  incr(key: string, amount: number, maximum: number, ttl: number): Promise<boolean>;
  /** Subtract `amount` unless the result would drop below `minimum`; refreshes the TTL; true when changed. */
  decr(key: string, amount: number, minimum: number, ttl: number): Promise<boolean>;
  /** Add `amount` to `key` unless it, or the sum over `keys` plus `amount`, would exceed `maximum`. */
  incrAndSum(key: string, keys: string[], amount: number, maximum: number, ttl: number): Promise<boolean>;
  /** Wait up to `timeout` ms (undefined = forever) for a notification on `key`; true when notified. */
  wait(key: string, timeout: number | undefined): Promise<boolean>;
  /** Notify every waiter on `key`, now and until `ttl` expires. */
  waitNotify(key: string, ttl: number): Promise<void>;
  /** Reach the service now, failing with a ConnectionFailed that names its redacted URL. */
  connect?(): Promise<void>;
  close?(): Promise<void>;
}
