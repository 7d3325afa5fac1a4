import type * as Amqplib from "amqplib";
import type { Channel, RecoveringChannelModel, SocketOptions } from "amqplib";
import { lazyRequire } from "../../lazy.js";
import { ConnectionFailed } from "../../errors.js";
import { getLogger, redactUrl } from "../../logging.js";
import type { AmqpAddress } from "./url.js";

const amqplib = lazyRequire<typeof Amqplib>("amqplib");

const log = getLogger("broker.rabbitmq");

export interface ConnectionSettings {
  url: string;
  /** The URL taken apart: credentials, vhost and the node(s) to connect to. */
  address: AmqpAddress;
  /** TLS material and socket settings for amqplib (`ca`, `cert`, `key`, `servername`, `timeout`…). */
  socketOptions?: SocketOptions;
  /** Longest pause between reconnect attempts, in ms. */
  maxReconnectDelay: number;
}

/**
 * Heartbeat (s) when the URL names none. The server's default (60 s) takes up to two minutes to notice a dead peer;
 * actors never block the main thread that answers heartbeats, so a shorter one is safe.
 */
export const DEFAULT_HEARTBEAT = 15;

/** Strip a secret out of a text a server or library wrote, in case it echoes the URL. */
function scrub(text: string, password: string): string {
  return password ? text.split(password).join("***") : text;
}

/** Connections opened by this process, for spreading them over the nodes of a cluster. */
let opened = 0;

/**
 * Where amqplib connects, in the object form it re-reads on every attempt of its recovery: pointing `hostname`
 * and `port` at another node between attempts is how a connection moves to a live node of a cluster.
 */
class NodeRotation {
  readonly protocol: string;
  readonly username: string;
  readonly password: string;
  readonly vhost: string;
  readonly heartbeat: number;
  readonly frameMax: string | undefined;
  readonly channelMax: string | undefined;
  readonly locale: string | undefined;
  readonly maxFrameSize: string | undefined;
  hostname: string;
  port: number;
  private index: number;

  constructor(private readonly address: AmqpAddress) {
    this.protocol = address.protocol;
    this.username = address.username;
    this.password = address.password;
    this.vhost = address.rawVhost;
    this.heartbeat = address.query.heartbeat === undefined ? DEFAULT_HEARTBEAT : Number.parseInt(address.query.heartbeat, 10);
    this.frameMax = address.query.frameMax;
    this.channelMax = address.query.channelMax;
    this.locale = address.query.locale;
    this.maxFrameSize = address.query.maxFrameSize;
    // Connections spread over the nodes instead of all piling onto the first one: round robin within a process,
    // offset by the pid across processes. Three connections opened in a row reach three different nodes.
    this.index = (process.pid + opened++) % address.hosts.length;
    this.hostname = address.hosts[this.index]!.hostname;
    this.port = address.hosts[this.index]!.port;
  }

  get node(): string {
    return this.hostname.includes(":") ? `[${this.hostname}]:${this.port}` : `${this.hostname}:${this.port}`;
  }

  next(): void {
    this.index = (this.index + 1) % this.address.hosts.length;
    this.hostname = this.address.hosts[this.index]!.hostname;
    this.port = this.address.hosts[this.index]!.port;
  }
}

/**
 * Open one connection that amqplib re-opens with backoff after it drops, on the next node of the URL when there
 * are several. The first connection tries each node once and is not retried further, so a wrong URL or password
 * fails start-up at once with the URL (password redacted) in the error.
 */
export async function openConnection(settings: ConnectionSettings, role: string): Promise<RecoveringChannelModel> {
  const where = redactUrl(settings.url);
  const nodes = new NodeRotation(settings.address);
  const hidden = settings.address.password;
  const several = settings.address.hosts.length > 1;
  /** Why each node refused the first connection, for the start-up error. */
  const failures: string[] = [];
  let connectedOnce = false;
  // Not waiting for the connection inside connect() lets these listeners see the first attempts too.
  const connection = await amqplib().connect(nodes as unknown as Amqplib.Options.Connect, {
    timeout: 10_000,
    ...settings.socketOptions,
    clientProperties: { connection_name: `troupe ${role} pid ${process.pid}` },
    recovery: { initialMaxRetries: settings.address.hosts.length - 1, maxRetries: Infinity, initialDelay: 100, maxDelay: settings.maxReconnectDelay, waitForConnect: false },
  });
  connection.on("connect-failed", (err: Error) => {
    if (!connectedOnce) failures.push(`${nodes.node}: ${scrub(describe(err), hidden)}`);
    if (several) nodes.next();
  });
  connection.on("disconnect", (err: Error) => {
    log.warn("RabbitMQ connection lost; reconnecting", { role, broker: where, node: nodes.node, error: scrub(err.message, hidden) });
    if (several) nodes.next();
  });
  try {
    await connection.waitForConnect();
    connectedOnce = true;
  } catch (err) {
    const tried = several ? ` (tried ${failures.join("; ")})` : "";
    throw new ConnectionFailed(`cannot connect to RabbitMQ at ${where}: ${scrub(describe(err), hidden)}${tried}`, { cause: err });
  }
  connection.on("error", (err: Error) => log.warn("RabbitMQ connection error", { role, broker: where, node: nodes.node, error: scrub(err.message, hidden) }));
  connection.on("reconnect-scheduled", ({ attempt, delay }: { attempt: number; delay: number }) => log.info("RabbitMQ reconnect scheduled", { role, broker: where, node: nodes.node, attempt, delayMs: delay }));
  connection.on("connect", () => log.info("RabbitMQ connected", { role, broker: where, node: nodes.node }));
  connection.on("blocked", (reason: string) => log.warn("RabbitMQ blocked publishing (resource alarm)", { role, broker: where, reason }));
  return connection;
}

function describe(err: unknown): string {
  const e = err as { message?: string; code?: string };
  if (e?.code === "ECONNREFUSED") return "connection refused (is RabbitMQ running and listening there?)";
  if (typeof e?.message === "string" && /ACCESS[-_]REFUSED|403/.test(e.message)) return `access refused: wrong user name or password, or no access to the vhost (${e.message})`;
  // RabbitMQ refuses connection.open for a vhost that is missing or not permitted; amqplib reports only the frame.
  if (typeof e?.message === "string" && /NOT_ALLOWED|530|Expected ConnectionOpenOk/.test(e.message)) return `the vhost is missing or the user has no access to it (${e.message})`;
  return e?.message || e?.code || String(err);
}

/**
 * One channel opened on demand and re-opened on the next use after it closed (a failed passive declare or a
 * connection drop closes a channel).
 */
export class LazyChannel<C extends Channel> {
  private current: Promise<C> | undefined;
  /** The channel once open and until it closes, for callers on a hot path that should not await. */
  open: C | undefined;

  constructor(
    private readonly create: () => Promise<C>,
    private readonly role: string,
  ) {}

  get(): Promise<C> {
    if (!this.current) {
      const opening = this.create().then((channel) => {
        channel.on("error", (err: Error) => log.debug("RabbitMQ channel error", { role: this.role, error: err.message }));
        channel.on("close", () => {
          if (this.current !== opening) return;
          this.current = undefined;
          this.open = undefined;
        });
        if (this.current === opening) this.open = channel;
        return channel;
      });
      opening.catch(() => {
        if (this.current === opening) this.current = undefined;
      });
      this.current = opening;
    }
    return this.current;
  }

  async close(): Promise<void> {
    const current = this.current;
    this.current = undefined;
    this.open = undefined;
    if (current) await (await current.catch(() => undefined))?.close().catch(() => undefined);
  }
}
