import { createRequire } from "node:module";

const require = createRequire(import.meta.url);

/**
 * A CommonJS dependency loaded on first use. Worker threads import "troupe" for `actor()` but never open a broker
 * connection or serve metrics; loading ioredis, amqplib, prom-client or yaml there would cost every thread
 * megabytes of heap for nothing.
 */
export function lazyRequire<T>(id: string): () => T {
  let loaded: T | undefined;
  return () => (loaded ??= require(id) as T);
}
