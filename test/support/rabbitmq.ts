import { execFile } from "node:child_process";
import { createServer as createTcpServer, connect as netConnect, type AddressInfo, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, type TlsOptions } from "node:tls";
import { promisify } from "node:util";
import { connect, type Channel, type ChannelModel } from "amqplib";
import { Message, RabbitmqBroker, Worker, setBroker, setLogLevel, setLogSink, type Broker, type Consumer, type RabbitmqBrokerOptions, type WorkerOptions } from "troupe";
import { AMQP_URL, fixture } from "./env.js";
import { EventLog } from "./events.js";
import { until } from "./wait.js";

const exec = promisify(execFile);

export const MANAGEMENT_URL = process.env.TEST_RABBITMQ_MANAGEMENT_URL ?? "http://guest:guest@127.0.0.1:15672";

/** A plain amqplib connection for a test to look at queues the way any client (or Dramatiq) would. */
export class RawAmqp {
  private constructor(
    readonly connection: ChannelModel,
    readonly channel: Channel,
  ) {}

  static async open(url = AMQP_URL): Promise<RawAmqp> {
    const connection = await connect(url);
    connection.on("error", () => undefined);
    const channel = await connection.createChannel();
    channel.on("error", () => undefined);
    return new RawAmqp(connection, channel);
  }

  /** A fresh channel, for operations that may close theirs (a mismatching declare, a passive check). */
  async scratch(): Promise<Channel> {
    const channel = await this.connection.createChannel();
    channel.on("error", () => undefined);
    return channel;
  }

  /** Consumers subscribed to a server queue; 0 when the queue does not exist (checked on a scratch channel, which a 404 closes). */
  async consumerCount(name: string): Promise<number> {
    const channel = await this.scratch();
    try {
      return (await channel.checkQueue(name)).consumerCount;
    } catch {
      return 0;
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  /** Take every ready message off a server queue and return each one's first argument (the tests' message ids). */
  async drainIds(name: string): Promise<string[]> {
    const ids: string[] = [];
    for (let got = await this.channel.get(name, { noAck: true }); got; got = await this.channel.get(name, { noAck: true })) ids.push(Message.decode(got.content).args[0] as string);
    return ids;
  }

  /** Delete the server queues of canonical queues: `q`, `q.DQ` and `q.XQ`. */
  async deleteQueues(...queues: string[]): Promise<void> {
    for (const queue of queues) for (const name of [queue, `${queue}.DQ`, `${queue}.XQ`]) await this.channel.deleteQueue(name);
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => undefined);
  }
}

export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await exec("rabbitmqctl", ["-q", ...args], { timeout: 60_000 });
  return stdout;
}

/** `rabbitmqctl list_queues name durable auto_delete arguments` lines of the named server queues, sorted. */
export async function listQueueLines(names: string[]): Promise<string[]> {
  const out = await rabbitmqctl("list_queues", "--no-table-headers", "name", "durable", "auto_delete", "arguments");
  const wanted = new Set(names);
  return out.split("\n").filter((line) => wanted.has(line.split("\t")[0]!)).sort();
}

/**
 * Force-close the broker connections a process opened (Troupe names them "troupe <role> pid <pid>"), as a network
 * failure or a broker-side kill would; other connections on the shared server are left alone.
 */
export async function closeConnectionsOf(pid: number): Promise<number> {
  const out = await rabbitmqctl("list_connections", "--no-table-headers", "pid", "client_properties");
  const victims = out
    .split("\n")
    .filter((line) => line.includes(`pid ${pid}"`))
    .map((line) => line.split("\t")[0]!);
  for (const victim of victims) await rabbitmqctl("close_connection", victim, "closed by a Troupe test");
  return victims.length;
}

/** The management API URL when the plugin answers here, enabling it once if `rabbitmq-plugins` can. */
export async function managementUrl(): Promise<string | undefined> {
  const answers = async () => {
    try {
      const base = new URL(MANAGEMENT_URL);
      const auth = Buffer.from(`${base.username}:${base.password}`).toString("base64");
      base.username = "";
      base.password = "";
      const response = await fetch(new URL("/api/overview", base), { headers: { authorization: `Basic ${auth}` }, signal: AbortSignal.timeout(2000) });
      return response.ok;
    } catch {
      return false;
    }
  };
  if (await answers()) return MANAGEMENT_URL;
  try {
    await exec("rabbitmq-plugins", ["enable", "rabbitmq_management"], { timeout: 60_000 });
    await until(answers, "the RabbitMQ management API", { timeout: 30_000, interval: 250 });
    return MANAGEMENT_URL;
  } catch {
    return undefined;
  }
}

/**
 * A TCP (or TLS-terminating) relay to the test RabbitMQ on loopback (or to another loopback service: `upstream`,
 * e.g. a Redis). Stopping it cuts every connection through it and refuses new ones, which is how a test takes "the
 * broker" away from one client without touching the shared server; starting it again on the same port brings it back.
 */
export class BrokerRelay {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  /** Client-to-broker bytes kept back while `hold` is on, per client connection. */
  private readonly held = new Map<Socket, { upstream: Socket; chunks: Buffer[] }>();
  private holding = false;
  port = 0;

  constructor(
    private readonly tls?: TlsOptions,
    private readonly upstream = { host: "127.0.0.1", port: 5672 },
  ) {}

  async start(): Promise<void> {
    const relay = (client: Socket) => {
      const upstream = netConnect(this.upstream);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on("error", () => socket.destroy());
        socket.on("close", () => {
          this.sockets.delete(socket);
          client.destroy();
          upstream.destroy();
        });
      }
      // Client bytes are forwarded by hand, so that `hold` can keep them back while still reading the client: a
      // client that dies while held is then seen to close, and what it sent never reaches the broker.
      const held = { upstream, chunks: [] as Buffer[] };
      this.held.set(client, held);
      client.on("data", (chunk: Buffer) => (this.holding ? held.chunks.push(chunk) : upstream.write(chunk)));
      client.on("end", () => upstream.end());
      client.on("close", () => this.held.delete(client));
      upstream.pipe(client);
    };
    this.server = this.tls ? createTlsServer(this.tls, relay) : createTcpServer(relay);
    const server = this.server;
    await new Promise<void>((resolve) => server.listen(this.port, "127.0.0.1", resolve));
    this.port = (server.address() as AddressInfo).port;
  }

  /** Stop forwarding bytes either way without closing anything: a broker that went silent. */
  pause(): void {
    for (const socket of this.sockets) socket.pause();
  }

  resume(): void {
    for (const socket of this.sockets) socket.resume();
  }

  /** Client connections open through the relay. */
  get connections(): number {
    return this.held.size;
  }

  /**
   * Keep back every byte clients send (publishes, confirms asked for, heartbeats) until `release`, while the broker's
   * side still flows: a publish that has left its process but not reached RabbitMQ. A client that closes meanwhile
   * loses what it sent, as over a network that failed with it.
   */
  hold(): void {
    this.holding = true;
  }

  /** Forward what was kept back, in order, and stop holding. */
  release(): void {
    this.holding = false;
    for (const { upstream, chunks } of this.held.values()) for (const chunk of chunks.splice(0)) upstream.write(chunk);
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    if (server) await new Promise((resolve) => server.close(resolve));
  }
}

export interface FixtureWorker {
  worker: Worker;
  /** What the fixture's actors reported, from every worker thread. */
  events: EventLog;
  stop(): Promise<void>;
}

/** An in-process worker running the actors of test/fixtures/rabbitmq.ts (their queue is TROUPE_TEST_RABBIT_QUEUE). */
export async function startFixtureWorker(broker: Broker, options: Omit<WorkerOptions, "modules"> = {}): Promise<FixtureWorker> {
  const modules = [fixture("rabbitmq")];
  await import(modules[0]!);
  const worker = new Worker(broker, { modules, ...options });
  const events = new EventLog();
  await worker.start();
  return {
    worker,
    events,
    async stop() {
      events.close();
      await worker.stop(5000);
    },
  };
}

/** A connected broker on the test RabbitMQ, installed as the global broker so that `actor.send` uses it. */
export async function globalRabbitmqBroker(options: RabbitmqBrokerOptions = {}): Promise<RabbitmqBroker> {
  const broker = new RabbitmqBroker(AMQP_URL, options);
  setBroker(broker);
  await broker.connect();
  return broker;
}

/** Run `fn` with every log line, debug included, captured into `lines` (the test run's own level may hide them). */
export async function captureLogs<T>(lines: string[], fn: () => Promise<T>): Promise<T> {
  const previous = setLogSink((line) => lines.push(line));
  setLogLevel("debug");
  try {
    return await fn();
  } finally {
    setLogSink(previous);
    setLogLevel((process.env.TROUPE_LOG_LEVEL as Parameters<typeof setLogLevel>[0] | undefined) ?? "info");
  }
}

export interface AckingConsumer {
  consumer: Consumer;
  /** First argument of every delivery, in delivery order. */
  delivered: string[];
  /** How many times the consumer reported a lost channel or connection. */
  lost(): number;
}

/** A consumer (no worker) that acks every delivery at once and records what it saw. */
export async function ackingConsumer(broker: Broker, queue: string, prefetch: number): Promise<AckingConsumer> {
  const delivered: string[] = [];
  let lost = 0;
  const consumer: Consumer = broker.consume(queue, {
    prefetch,
    onMessage: (proxy) => {
      delivered.push(proxy.message.args[0] as string);
      void consumer.ack(proxy);
    },
    onConnectionLost: () => lost++,
  });
  await consumer.start();
  return { consumer, delivered, lost: () => lost };
}
