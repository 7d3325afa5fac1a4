import { spawn, type ChildProcess } from "node:child_process";
import { after, before } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Redis } from "ioredis";
import { RedisBroker, Worker, setBroker, type RedisBrokerOptions } from "troupe";
import { freePort } from "../../worker/free-port.js";
import { EventLog } from "./events.js";
import { until } from "./wait.js";

export { freePort };

/** A plain client for inspecting and seeding Redis in tests. */
export function redisClient(url: string): Redis {
  return new Redis(url, { maxRetriesPerRequest: 3 });
}

/** Every key under `<namespace>:`, deleted with SCAN + DEL (the test's own namespace only). */
export async function deleteNamespace(client: Redis, namespace: string): Promise<void> {
  for await (const keys of client.scanStream({ match: `${namespace}:*`, count: 1000 }) as AsyncIterable<string[]>) {
    if (keys.length) await client.del(...keys);
  }
}

/** Snapshot of every key under `<namespace>:` as {type, value}, with the namespace prefix removed. */
export async function dumpNamespace(client: Redis, namespace: string): Promise<Record<string, { type: string; value: unknown }>> {
  const out: Record<string, { type: string; value: unknown }> = {};
  for await (const keys of client.scanStream({ match: `${namespace}:*`, count: 1000 }) as AsyncIterable<string[]>) {
    for (const key of keys) {
      const type = await client.type(key);
      const value =
        type === "list" ? await client.lrange(key, 0, -1)
        : type === "hash" ? await client.hgetall(key)
        : type === "set" ? (await client.smembers(key)).sort()
        : type === "zset" ? await client.zrange(key, 0, -1)
        : await client.get(key);
      out[key.slice(namespace.length + 1)] = { type, value };
    }
  }
  return out;
}

/** A private redis-server with append-only persistence (fsync on every write), restartable on the same port. */
export class OwnRedisServer {
  readonly dir = mkdtempSync(join(tmpdir(), "troupe-redis-"));
  private child: ChildProcess | undefined;

  constructor(readonly port: number) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  /** `extra` are more redis-server arguments for this run (e.g. `["--databases", "4"]`). */
  async start(extra: string[] = []): Promise<void> {
    this.child = spawn("redis-server", ["--port", String(this.port), "--bind", "127.0.0.1", "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--dir", this.dir, ...extra], { stdio: "ignore" });
    const probe = redisClient(this.url);
    probe.on("error", () => undefined);
    try {
      await until(async () => (await probe.ping().catch(() => "")) === "PONG", `redis-server on port ${this.port}`, { interval: 20 });
    } finally {
      probe.disconnect();
    }
  }

  /** SIGKILL: no chance to flush anything beyond what appendfsync already wrote. */
  async kill(): Promise<void> {
    const child = this.child;
    // A process killed by a signal keeps exitCode null and sets signalCode instead.
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  }

  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A Troupe worker on a Redis broker in its own namespace, with the events its fixture actors report. */
export class RedisWorkerHarness {
  readonly client: Redis;
  readonly broker: RedisBroker;
  readonly events = new EventLog();
  private worker: Worker | undefined;

  constructor(
    readonly url: string,
    readonly namespace: string,
    private readonly modules: string[],
    options: RedisBrokerOptions = {},
  ) {
    this.client = redisClient(url);
    this.broker = setBroker(new RedisBroker(url, { ...options, namespace })) as RedisBroker;
  }

  async start(threads = 2): Promise<Worker> {
    for (const module of this.modules) await import(module);
    this.worker = new Worker(this.broker, { modules: this.modules, threads });
    await this.worker.start();
    return this.worker;
  }

  /** Stop the worker, close the broker and delete every key of the namespace. */
  async close(): Promise<void> {
    this.events.close();
    await this.worker?.stop(5000);
    await this.broker.close();
    await deleteNamespace(this.client, this.namespace);
    this.client.disconnect();
  }
}

/**
 * For a describe block: open `create()` before its tests and, after them, close it and delete every key under
 * `namespace` (the suite's own). `client` is a plain client for seeding and inspecting.
 */
export function redisSuite<T extends { close(): Promise<void> }>(url: string, namespace: string, create: () => T | Promise<T>): { readonly client: Redis; readonly value: T } {
  const client = redisClient(url);
  let value: T | undefined;
  before(async () => {
    value = await create();
  });
  after(async () => {
    await value?.close();
    await deleteNamespace(client, namespace);
    client.disconnect();
  });
  return {
    client,
    get value(): T {
      if (!value) throw new Error("the suite's resource is not open yet");
      return value;
    },
  };
}
