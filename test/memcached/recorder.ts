import { createServer, connect, type Server, type Socket } from "node:net";
import { once } from "node:events";

/** One request and its reply, each shown as the text-protocol bytes that carry the same fields. */
export interface Exchange {
  request: string;
  reply: string;
}

/** The golden captures' escaping (capture/rawmc.py `esc`): \r, \n, \\ and \xNN outside printable ASCII. */
export function esc(bytes: Buffer | string): string {
  let out = "";
  for (const ch of Buffer.from(bytes)) {
    if (ch === 13) out += "\\r";
    else if (ch === 10) out += "\\n";
    else if (ch === 92) out += "\\\\";
    else if (ch >= 32 && ch < 127) out += String.fromCharCode(ch);
    else out += `\\x${ch.toString(16).padStart(2, "0")}`;
  }
  return out;
}

const HEADER = 24;
const OP = { get: 0x00, set: 0x01, add: 0x02, delete: 0x04, incr: 0x05, decr: 0x06 } as const;
const STATUS = { ok: 0x00, notFound: 0x01, exists: 0x02, tooLarge: 0x03, notStored: 0x05 } as const;
/** incr/decr's expiration meaning "fail on a missing key", the text protocol's behaviour. */
const NO_CREATE = 0xffff_ffff;

interface Frame {
  opcode: number;
  status: number;
  opaque: number;
  cas: bigint;
  extras: Buffer;
  key: Buffer;
  value: Buffer;
}

/** Complete binary-protocol frames at the front of `buffer`, and what is left after them. */
function frames(buffer: Buffer): { frames: Frame[]; rest: Buffer } {
  const found: Frame[] = [];
  let at = 0;
  while (buffer.length - at >= HEADER) {
    const body = buffer.readUInt32BE(at + 8);
    if (buffer.length - at < HEADER + body) break;
    const keyLength = buffer.readUInt16BE(at + 2);
    const extrasLength = buffer.readUInt8(at + 4);
    const start = at + HEADER;
    found.push({
      opcode: buffer.readUInt8(at + 1),
      status: buffer.readUInt16BE(at + 6),
      opaque: buffer.readUInt32BE(at + 12),
      cas: buffer.readBigUInt64BE(at + 16),
      extras: buffer.subarray(start, start + extrasLength),
      key: buffer.subarray(start + extrasLength, start + extrasLength + keyLength),
      value: buffer.subarray(start + extrasLength + keyLength, start + body),
    });
    at = start + body;
  }
  return { frames: found, rest: buffer.subarray(at) };
}

/**
 * The text command pylibmc would send for a binary request. `casReads`: render reads as `gets` (Dramatiq's
 * rate-limit client forces libmemcached's cas behaviour, its results client does not): a binary get always carries
 * the CAS unique, the text protocol only shows it for `gets`.
 */
function requestText(frame: Frame, casReads: boolean): string {
  const key = frame.key.toString("latin1");
  switch (frame.opcode) {
    case OP.get:
      return `${casReads ? "gets" : "get"} ${key}\r\n`;
    case OP.set:
    case OP.add: {
      const [flags, exptime] = [frame.extras.readUInt32BE(0), frame.extras.readUInt32BE(4)];
      const verb = frame.opcode === OP.add ? "add" : frame.cas === 0n ? "set" : "cas";
      const cas = verb === "cas" ? ` ${frame.cas}` : "";
      return `${verb} ${key} ${flags} ${exptime} ${frame.value.length}${cas}\r\n${frame.value.toString("latin1")}\r\n`;
    }
    case OP.incr:
    case OP.decr: {
      const verb = frame.opcode === OP.incr ? "incr" : "decr";
      // A creating incr/decr has no text-protocol form: shown so that a comparison fails on it.
      const creating = frame.extras.readUInt32BE(16) === NO_CREATE ? "" : " (creating)";
      return `${verb} ${key} ${frame.extras.readBigUInt64BE(0)}${creating}\r\n`;
    }
    case OP.delete:
      return `delete ${key}\r\n`;
    default:
      return `binary opcode 0x${frame.opcode.toString(16)} ${key}\r\n`;
  }
}

/** The text-protocol reply memcached gives the text command above, in the same outcome. */
function replyText(request: Frame, reply: Frame, casReads: boolean): string {
  const key = request.key.toString("latin1");
  const { status } = reply;
  switch (request.opcode) {
    case OP.get:
      if (status === STATUS.notFound) return "END\r\n";
      return `VALUE ${key} ${reply.extras.readUInt32BE(0)} ${reply.value.length}${casReads ? ` ${reply.cas}` : ""}\r\n${reply.value.toString("latin1")}\r\nEND\r\n`;
    case OP.set:
    case OP.add:
      if (status === STATUS.ok) return "STORED\r\n";
      if (status === STATUS.tooLarge) return "SERVER_ERROR object too large for cache\r\n";
      if (request.opcode === OP.add) return "NOT_STORED\r\n";
      return status === STATUS.exists ? "EXISTS\r\n" : status === STATUS.notFound ? "NOT_FOUND\r\n" : `binary status 0x${status.toString(16)}\r\n`;
    case OP.incr:
    case OP.decr:
      return status === STATUS.ok ? `${reply.value.readBigUInt64BE(0)}\r\n` : status === STATUS.notFound ? "NOT_FOUND\r\n" : `binary status 0x${status.toString(16)}\r\n`;
    case OP.delete:
      return status === STATUS.ok ? "DELETED\r\n" : "NOT_FOUND\r\n";
    default:
      return `binary status 0x${status.toString(16)}\r\n`;
  }
}

/**
 * A proxy in front of one memcached that records the binary-protocol traffic of the clients passing through it
 * and renders each exchange as its text-protocol form, so that Troupe's traffic compares with the captures of
 * pylibmc's text-protocol traffic (wire-transcript.txt, the `wire` of rate-limits.json) field for field: verb, key,
 * flags, exptime, length, value, CAS unique and reply.
 */
export class WireRecorder {
  private exchanges: Exchange[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    private readonly server: Server,
    private readonly casReads: boolean,
  ) {}

  static async start(target: { host: string; port: number }, { casReads }: { casReads: boolean }): Promise<WireRecorder> {
    const server = createServer();
    const recorder = new WireRecorder(server, casReads);
    server.on("connection", (client) => recorder.relay(client, target));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return recorder;
  }

  get url(): string {
    const address = this.server.address() as { port: number };
    return `memcached://127.0.0.1:${address.port}`;
  }

  private relay(client: Socket, target: { host: string; port: number }): void {
    const upstream = connect(target.port, target.host);
    this.sockets.add(client).add(upstream);
    const pending = new Map<number, Frame>();
    let fromClient: Buffer = Buffer.alloc(0);
    let fromServer: Buffer = Buffer.alloc(0);
    client.on("data", (chunk: Buffer) => {
      const parsed = frames(Buffer.concat([fromClient, chunk]));
      fromClient = parsed.rest;
      for (const frame of parsed.frames) pending.set(frame.opaque, frame);
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      const parsed = frames(Buffer.concat([fromServer, chunk]));
      fromServer = parsed.rest;
      for (const reply of parsed.frames) {
        const request = pending.get(reply.opaque);
        if (!request) continue;
        pending.delete(reply.opaque);
        this.exchanges.push({ request: esc(requestText(request, this.casReads)), reply: esc(replyText(request, reply, this.casReads)) });
      }
      client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("close", end).on("error", end);
    upstream.on("close", end).on("error", end);
  }

  /** The exchanges recorded since the last call, in the order the replies came. */
  take(): Exchange[] {
    const taken = this.exchanges;
    this.exchanges = [];
    return taken;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.server.close();
    await once(this.server, "close");
  }
}
