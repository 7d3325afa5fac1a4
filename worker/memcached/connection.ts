import type * as MemJS from "memjs";
import { BrokerError, ConnectionClosed, ConnectionFailed, TroupeError } from "../errors.js";
import { lazyRequire } from "../lazy.js";
import { getLogger, redactUrl } from "../logging.js";
import { serverIndex } from "./hashing.js";

const memjs = lazyRequire<typeof MemJS>("memjs");
const log = getLogger("memcached");

export const DEFAULT_MEMCACHED_PORT = 11211;

/** pylibmc's flags: 0 for bytes (Dramatiq's results), 4 for integers (`_FLAG_LONG`, Dramatiq's limiter counters). */
export const FLAGS_BYTES = 0;
export const FLAGS_INTEGER = 4;

/** memcached reads an exptime above 30 days as an absolute Unix time. */
const RELATIVE_EXPTIME_LIMIT = 2_592_000;

/**
 * Dramatiq's `int(ttl_ms / 1000)` seconds, except where that turns a finite TTL into something else: under a second
 * it would send 0 (never expires), so 1 is sent; over 30 days memcached would read it as an absolute time long past
 * (the item vanishes at once), so the absolute time now + TTL is sent.
 */
export function memcachedExptime(ttlMs: number, now: number = Date.now()): number {
  const seconds = Math.max(1, Math.trunc(ttlMs / 1000));
  return seconds > RELATIVE_EXPTIME_LIMIT ? Math.trunc(now / 1000) + seconds : seconds;
}

export interface MemcachedServer {
  host: string;
  port: number;
}

export interface MemcachedSettings {
  servers: MemcachedServer[];
  username?: string;
  password?: string;
}

function invalid(url: string, why: string): never {
  throw new TroupeError(`invalid memcached URL ${redactUrl(url)}: ${why} (use memcached://[user:password@]host[:port][,host2[:port]])`);
}

/**
 * `memcached://[user:password@]host[:port][,host2[:port]…]`: servers in the given order (the order decides where
 * each key lives, as in pylibmc), port 11211 by default, IPv6 hosts in brackets; SASL credentials percent-decoded.
 */
export function parseMemcachedUrl(url: string): MemcachedSettings {
  const match = /^memcached:\/\/(.*)$/i.exec(url);
  if (!match) invalid(url, "the scheme must be memcached://");
  let rest = match[1]!.replace(/\/$/, "");
  const at = rest.lastIndexOf("@");
  let username: string | undefined;
  let password: string | undefined;
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = userinfo.indexOf(":");
    try {
      username = decodeURIComponent(colon < 0 ? userinfo : userinfo.slice(0, colon));
      password = colon < 0 ? undefined : decodeURIComponent(userinfo.slice(colon + 1));
    } catch {
      invalid(url, "the user or password is not valid percent-encoding");
    }
    if (!username || !password) invalid(url, "SASL needs both a user and a password");
  }
  if (rest === "") invalid(url, "no server given");
  const servers = rest.split(",").map((entry) => {
    const server = /^(?:\[([0-9a-fA-F:.]+)\]|([^:/[\]\s]+))(?::(\d+))?$/.exec(entry.trim());
    if (!server) invalid(url, `"${entry}" is not host[:port]`);
    const port = server[3] === undefined ? DEFAULT_MEMCACHED_PORT : Number(server[3]);
    if (!Number.isInteger(port) || port < 1 || port > 65_535) invalid(url, `port ${server[3]} is not from 1 to 65535`);
    return { host: server[1] ?? server[2]!, port };
  });
  return { servers, username, password };
}

/** One stored item as a reader sees it. */
export interface MemcachedItem {
  value: Buffer;
  flags: number;
  /** The item's CAS unique, for a `cas` write. */
  cas: Buffer;
}

/** Binary protocol opcodes and statuses (memcached's protocol_binary.h). */
const OP = { get: 0x00, set: 0x01, add: 0x02, delete: 0x04, incr: 0x05, decr: 0x06, version: 0x0b } as const;
const STATUS = { ok: 0x00, notFound: 0x01, exists: 0x02, tooLarge: 0x03, notStored: 0x05, nonNumeric: 0x06, authError: 0x20 } as const;
/** Read by connect(): a get needs authentication on a SASL server (a version request does not). */
const CONNECT_PROBE_KEY = "troupe:connect-probe";
/** incr/decr with this expiration fail on a missing key instead of creating it, as the text protocol's do. */
const NO_CREATE = 0xffff_ffff;

interface Response {
  header: { status: number; cas: Buffer };
  extras: Buffer;
  val: Buffer;
}

/** A value memcached refused as larger than its item size limit (1 MB by default). */
export class ValueTooLarge extends BrokerError {}

export interface MemcachedClientOptions {
  /** ms a request may take before it fails (default 1000; connecting gets twice that). */
  timeout?: number;
}

/**
 * A memcached client on memjs (binary protocol, SASL) that places keys as pylibmc does (Jenkins one-at-a-time over
 * the servers in URL order) and writes flags, CAS and non-creating incr/decr, which memjs's own commands cannot:
 * requests are built here and sent through memjs's connection handling. Failed requests are not retried, so an
 * incr is never applied twice.
 */
export class MemcachedClient {
  readonly displayUrl: string;
  readonly settings: MemcachedSettings;
  private readonly client: MemJS.Client;

  constructor(url: string, { timeout = 1000 }: MemcachedClientOptions = {}) {
    this.displayUrl = redactUrl(url);
    this.settings = parseMemcachedUrl(url);
    const lib = memjs();
    const { username, password } = this.settings;
    const memjsLog = { log: (...parts: unknown[]) => log.debug(parts.map(String).join(" "), { url: this.displayUrl }) };
    const servers = this.settings.servers.map(({ host, port }) => new lib.Server(host, port, username, password, { timeout: timeout / 1000, conntimeout: (2 * timeout) / 1000 }));
    this.client = new lib.Client(servers, { retries: 1, logger: memjsLog });
    const count = servers.length;
    // memjs picks a server by the index getServer returns (its typings say string); pylibmc's rule replaces its own.
    (this.client as unknown as { getServer(key: string): number }).getServer = (key) => serverIndex(key, count);
  }

  private request(opcode: number, key: string, extras: Buffer, value: Buffer, cas?: Buffer): Promise<Response> {
    const client = this.client as MemJS.Client & { seq: number; incrSeq(): void; perform(key: string, request: Buffer, seq: number, callback: (err: unknown, response: Response) => void): void };
    client.incrSeq();
    const buffer = memjs().Utils.makeRequestBuffer(opcode, key, extras, value, client.seq);
    cas?.copy(buffer, 16);
    return new Promise((resolve, reject) => {
      client.perform(key, buffer, client.seq, (err, response) => (err ? reject(this.connectionError(err)) : resolve(response)));
    });
  }

  private connectionError(err: unknown): Error {
    const message = err instanceof Error ? err.message : String(err);
    return new ConnectionClosed(`memcached at ${this.displayUrl}: ${message}`, { cause: err });
  }

  private failed(what: string, key: string, response: Response): Error {
    const status = response.header.status;
    const detail = response.val.toString("utf8") || `status ${status}`;
    if (status === STATUS.tooLarge) return new ValueTooLarge(`memcached at ${this.displayUrl} refused ${what} of ${key}: value too large for its item size limit`);
    return new BrokerError(`memcached at ${this.displayUrl} refused ${what} of ${key}: ${detail}`);
  }

  /**
   * Reach every server now (a get of a probe key each, which a SASL server refuses without credentials) and fail with the redacted URL when one cannot be reached or
   * refuses the SASL credentials, instead of at the first result or limit.
   */
  async connect(): Promise<void> {
    const servers = (this.client as unknown as { servers: (MemJS.Server & ServerInternals)[] }).servers;
    await Promise.all(
      servers.map(
        (server) =>
          new Promise<void>((resolve, reject) => {
            const client = this.client as unknown as { seq: number; incrSeq(): void };
            client.incrSeq();
            const seq = client.seq;
            const fail = (message: string, cause?: unknown) => reject(new ConnectionFailed(`cannot connect to memcached at ${this.displayUrl} (${server.host}:${server.port}): ${message}`, { cause }));
            server.onResponse(seq, (response) => (response.header.status === STATUS.authError ? fail("authentication required (the server runs with SASL; give user:password in the URL)") : resolve()));
            server.onError(seq, (err: unknown) => fail(err instanceof Error ? err.message : String(err), err));
            server.write(memjs().Utils.makeRequestBuffer(OP.get, CONNECT_PROBE_KEY, "", "", seq));
          }),
      ),
    );
  }

  async get(key: string): Promise<MemcachedItem | undefined> {
    const response = await this.request(OP.get, key, Buffer.alloc(0), Buffer.alloc(0));
    if (response.header.status === STATUS.notFound) return undefined;
    if (response.header.status !== STATUS.ok) throw this.failed("get", key, response);
    return { value: response.val, flags: response.extras.length >= 4 ? response.extras.readUInt32BE(0) : 0, cas: response.header.cas };
  }

  /** `set`; with `cas`, only if the item is unchanged since read: "exists" when it changed, "missing" when gone. */
  async set(key: string, value: Buffer, flags: number, exptime: number, cas?: Buffer): Promise<"stored" | "exists" | "missing"> {
    const response = await this.request(OP.set, key, storageExtras(flags, exptime), value, cas);
    switch (response.header.status) {
      case STATUS.ok:
        return "stored";
      case STATUS.exists:
        return "exists";
      case STATUS.notFound:
        return "missing";
      default:
        throw this.failed("set", key, response);
    }
  }

  /** `add`: store only if the key is absent; false when it exists. */
  async add(key: string, value: Buffer, flags: number, exptime: number): Promise<boolean> {
    const response = await this.request(OP.add, key, storageExtras(flags, exptime), value);
    if (response.header.status === STATUS.ok) return true;
    if (response.header.status === STATUS.exists || response.header.status === STATUS.notStored) return false;
    throw this.failed("add", key, response);
  }

  /** `incr`/`decr` by `amount`; undefined when the key is missing (never created). decr stops at 0, as memcached's. */
  async adjust(key: string, amount: number, direction: "incr" | "decr"): Promise<number | undefined> {
    const extras = Buffer.alloc(20);
    extras.writeBigUInt64BE(BigInt(amount), 0);
    extras.writeUInt32BE(NO_CREATE, 16);
    const response = await this.request(OP[direction], key, extras, Buffer.alloc(0));
    if (response.header.status === STATUS.notFound) return undefined;
    if (response.header.status !== STATUS.ok) throw this.failed(direction, key, response);
    return Number(response.val.readBigUInt64BE(0));
  }

  async delete(key: string): Promise<boolean> {
    const response = await this.request(OP.delete, key, Buffer.alloc(0), Buffer.alloc(0));
    if (response.header.status === STATUS.ok) return true;
    if (response.header.status === STATUS.notFound) return false;
    throw this.failed("delete", key, response);
  }

  close(): void {
    this.client.close();
  }
}

interface ServerInternals {
  host: string;
  port: number;
  onResponse(seq: number, fn: (response: Response) => void): void;
  onError(seq: number, fn: (err: unknown) => void): void;
  write(blob: Buffer): void;
}

function storageExtras(flags: number, exptime: number): Buffer {
  const extras = Buffer.alloc(8);
  extras.writeUInt32BE(flags, 0);
  extras.writeUInt32BE(exptime, 4);
  return extras;
}

/** An integer counter as memcached stores it: ASCII decimal, possibly padded with spaces after a decr. */
export function parseCounter(item: MemcachedItem, key: string): number {
  const text = item.value.toString("latin1").trim();
  if (!/^\d+$/.test(text)) throw new BrokerError(`memcached item ${key} is not an integer counter: ${JSON.stringify(text.slice(0, 40))}`);
  return Number(text);
}
