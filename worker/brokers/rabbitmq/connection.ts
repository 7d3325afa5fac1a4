import type * as Amqplib from "amqplib";
import type { Channel, RecoveringChannelModel, SocketOptions } from "amqplib";
import { lazyRequire } from "../../lazy.js";
import { ConnectionFailed } from "../../errors.js";
import { getLogger, redactUrl } from "../../logging.js";

const amqplib = lazyRequire<typeof Amqplib>("amqplib");

const log = getLogger("broker.rabbitmq");

export interface ConnectionSettings {
  url: string;
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

function withDefaultHeartbeat(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.searchParams.has("heartbeat")) return url;
    parsed.searchParams.set("heartbeat", String(DEFAULT_HEARTBEAT));
    return parsed.toString();
  } catch {
    return url;
  }
}

/** Strip a secret out of a text a server or library wrote, in case it echoes the URL. */
function scrub(text: string, url: string): string {
  let password = "";
  try {
    password = decodeURIComponent(new URL(url).password);
  } catch {
    return text;
  }
  return password ? text.split(password).join("***") : text;
}

/**
 * Open one connection that amqplib re-opens with backoff after it drops. The first attempt is not retried, so a
 * wrong URL or password fails start-up at once with the URL (password redacted) in the error.
 */
export async function openConnection(settings: ConnectionSettings, role: string): Promise<RecoveringChannelModel> {
  const where = redactUrl(settings.url);
  let connection: RecoveringChannelModel;
  try {
    connection = await amqplib().connect(withDefaultHeartbeat(settings.url), {
      timeout: 10_000,
      ...settings.socketOptions,
      clientProperties: { connection_name: `troupe ${role} pid ${process.pid}` },
      recovery: { initialMaxRetries: 0, maxRetries: Infinity, initialDelay: 100, maxDelay: settings.maxReconnectDelay },
    });
  } catch (err) {
    throw new ConnectionFailed(`cannot connect to RabbitMQ at ${where}: ${scrub(describe(err), settings.url)}`, { cause: err });
  }
  connection.on("error", (err: Error) => log.warn("RabbitMQ connection error", { role, broker: where, error: scrub(err.message, settings.url) }));
  connection.on("disconnect", (err: Error) => log.warn("RabbitMQ connection lost; reconnecting", { role, broker: where, error: scrub(err.message, settings.url) }));
  connection.on("reconnect-scheduled", ({ attempt, delay }: { attempt: number; delay: number }) => log.info("RabbitMQ reconnect scheduled", { role, broker: where, attempt, delayMs: delay }));
  connection.on("connect", () => log.info("RabbitMQ connected", { role, broker: where }));
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
