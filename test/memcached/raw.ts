import { connect, type Socket } from "node:net";
import { once } from "node:events";

/** An item as memcached's meta-get (`mg <key> v f t`) shows it: what any client, pylibmc included, would read. */
export interface RawItem {
  value: Buffer;
  flags: number;
  /** Seconds left; -1 = never expires. */
  ttl: number;
}

/**
 * A text-protocol client over a bare socket, independent of memjs: the tests read back what the backends wrote
 * (and write what a Python peer would) byte for byte through it.
 */
export class RawMemcached {
  private buffer = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  /** One command at a time: replies come back in order on one socket, so callers queue. */
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(private readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, chunk]);
      this.waiting?.();
    });
  }

  static async open(port = 11211, host = "127.0.0.1"): Promise<RawMemcached> {
    const socket = connect(port, host);
    await once(socket, "connect");
    return new RawMemcached(socket);
  }

  /** Bytes up to and including the next CRLF, waiting for them to arrive. */
  private async line(): Promise<string> {
    for (;;) {
      const end = this.buffer.indexOf("\r\n");
      if (end >= 0) {
        const text = this.buffer.subarray(0, end).toString("latin1");
        this.buffer = this.buffer.subarray(end + 2);
        return text;
      }
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }

  private async bytes(count: number): Promise<Buffer> {
    while (this.buffer.length < count + 2) await new Promise<void>((resolve) => (this.waiting = resolve));
    const data = this.buffer.subarray(0, count);
    this.buffer = this.buffer.subarray(count + 2);
    return data;
  }

  private serial<T>(command: () => Promise<T>): Promise<T> {
    const run = this.queue.then(command, command);
    this.queue = run.catch(() => undefined);
    return run;
  }

  get(key: string): Promise<RawItem | undefined> {
    return this.serial(() => this.getNow(key));
  }

  private async getNow(key: string): Promise<RawItem | undefined> {
    this.socket.write(`mg ${key} v f t\r\n`);
    const header = await this.line();
    if (header === "EN") return undefined;
    const match = /^VA (\d+) f(\d+) t(-?\d+)$/.exec(header);
    if (!match) throw new Error(`unexpected mg reply ${header}`);
    return { value: await this.bytes(Number(match[1])), flags: Number(match[2]), ttl: Number(match[3]) };
  }

  /** `set` as pylibmc sends it, with the flags and exptime given. */
  set(key: string, value: Buffer | string, flags: number, exptime: number): Promise<string> {
    const data = Buffer.from(value);
    return this.serial(() => {
      this.socket.write(Buffer.concat([Buffer.from(`set ${key} ${flags} ${exptime} ${data.length}\r\n`), data, Buffer.from("\r\n")]));
      return this.line();
    });
  }

  delete(...keys: string[]): Promise<void> {
    return this.serial(async () => {
      for (const key of keys) {
        this.socket.write(`delete ${key}\r\n`);
        await this.line();
      }
    });
  }

  close(): void {
    this.socket.destroy();
  }
}
