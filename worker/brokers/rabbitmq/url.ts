import { TroupeError } from "../../errors.js";
import { redactUrl } from "../../logging.js";

/** One RabbitMQ node to connect to. */
export interface AmqpHost {
  hostname: string;
  port: number;
}

/** The queue types Troupe declares: Dramatiq's classic queues, or replicated quorum queues (opt-in). */
export type QueueType = "classic" | "quorum";

/** Settings carried as URL parameters for Troupe itself; amqplib never sees them. */
export interface TroupeUrlParameters {
  queueType?: QueueType;
  confirmDelivery?: boolean;
  deliveryLimit?: number;
}

/**
 * An AMQP URL taken apart. It may name several nodes of one cluster (`amqp://u:p@h1:5672,h2:5673/vhost`), which
 * WHATWG `URL` cannot parse, so the parts are split by hand the way amqplib reads a single-host URL.
 */
export interface AmqpAddress {
  protocol: "amqp" | "amqps";
  hosts: AmqpHost[];
  username: string;
  password: string;
  /** The path as written (percent-encoded): amqplib unescapes it once. */
  rawVhost: string;
  /** The vhost name, decoded; `/` when the path is empty. */
  vhost: string;
  /** amqplib's own parameters (`heartbeat`, `frameMax`, `channelMax`, `locale`, `maxFrameSize`). */
  query: Record<string, string>;
  troupe: TroupeUrlParameters;
}

const AMQPLIB_PARAMETERS = new Set(["heartbeat", "frameMax", "channelMax", "locale", "maxFrameSize"]);

export function parseAmqpUrl(url: string): AmqpAddress {
  const fail = (why: string) => new TroupeError(`invalid RabbitMQ URL ${redactUrl(url)}: ${why}`);
  const match = /^(amqps?):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?$/i.exec(url);
  if (!match) throw fail("expected amqp://user:password@host[:port][,host2[:port]…][/vhost][?parameters]");
  const protocol = match[1]!.toLowerCase() as "amqp" | "amqps";
  const authority = match[2]!;
  const at = authority.lastIndexOf("@");
  const userinfo = at < 0 ? undefined : authority.slice(0, at);
  const hostList = at < 0 ? authority : authority.slice(at + 1);
  let username = "guest";
  let password = "guest";
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(":");
    username = decode(colon < 0 ? userinfo : userinfo.slice(0, colon), fail);
    password = colon < 0 ? "" : decode(userinfo.slice(colon + 1), fail);
  }
  const defaultPort = protocol === "amqps" ? 5671 : 5672;
  const hosts = hostList.split(",").map((entry) => parseHost(entry.trim(), defaultPort, fail));
  const rawVhost = match[3]!.replace(/^\//, "");
  const query: Record<string, string> = {};
  const troupe: TroupeUrlParameters = {};
  for (const [key, value] of new URLSearchParams(match[4] ?? "")) {
    if (key === "queue_type") troupe.queueType = parseQueueType(value, (why) => fail(`queue_type ${why}`));
    else if (key === "confirm_delivery") troupe.confirmDelivery = parseBoolean(value, fail);
    else if (key === "delivery_limit") troupe.deliveryLimit = parseDeliveryLimit(value, (why) => fail(`delivery_limit ${why}`));
    else if (AMQPLIB_PARAMETERS.has(key) && !(key in query)) query[key] = value;
  }
  return { protocol, hosts, username, password, rawVhost, vhost: decode(rawVhost, fail) || "/", query, troupe };
}

/** A `host[:port]` entry of a URL or of the `hosts` option; IPv6 addresses in brackets. */
export function parseHost(entry: string, defaultPort: number, fail: (why: string) => Error = (why) => new TroupeError(why)): AmqpHost {
  const bracketed = /^\[([^\]]+)\](?::(\d*))?$/.exec(entry);
  const plain = /^([^:[\]]+)(?::(\d*))?$/.exec(entry);
  const parts = bracketed ?? plain;
  if (!parts) throw fail(`bad host "${entry}" (expected host[:port])`);
  const port = parts[2] ? Number(parts[2]) : defaultPort;
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw fail(`bad port in "${entry}"`);
  return { hostname: parts[1]!, port };
}

export function parseQueueType(value: string, fail: (why: string) => Error): QueueType {
  if (value === "classic" || value === "quorum") return value;
  throw fail(`must be "classic" or "quorum", got "${value}"`);
}

/** `x-delivery-limit`: how many times RabbitMQ delivers a message of a quorum queue before dead-lettering it. */
export function parseDeliveryLimit(value: string, fail: (why: string) => Error): number {
  const limit = Number(value);
  if (value === "" || !Number.isInteger(limit) || limit < 1) throw fail(`must be a positive integer, got "${value}"`);
  return limit;
}

function parseBoolean(value: string, fail: (why: string) => Error): boolean {
  if (["true", "1", "yes"].includes(value.toLowerCase())) return true;
  if (["false", "0", "no"].includes(value.toLowerCase())) return false;
  throw fail(`confirm_delivery must be true or false, got "${value}"`);
}

function decode(text: string, fail: (why: string) => Error): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw fail(`bad percent-encoding in "${text}"`);
  }
}
