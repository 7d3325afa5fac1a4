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

/**
 * Node's own modules are not free either: node:crypto, node:http and node:cluster (with the net, dgram and
 * child_process modules they pull in) add about 1 MB to each worker thread that imports them, and a thread only
 * needs crypto if its actors send messages. Modules that "troupe" loads in every thread get them through these.
 */
export const nodeCrypto = lazyRequire<typeof import("node:crypto")>("node:crypto");
export const nodeHttp = lazyRequire<typeof import("node:http")>("node:http");
export const nodeCluster = lazyRequire<typeof import("node:cluster").default>("node:cluster");
