import type { Broker, QueueStats } from "../../worker/broker.js";
import type { RabbitmqBrokerOptions } from "../../worker/brokers/rabbitmq.js";
import { defaultMiddleware } from "../../worker/middleware/defaults.js";
import { Results } from "../../worker/results/middleware.js";
import { createBroker } from "../../worker/setup.js";
import { redactUrl } from "../../worker/logging.js";

export type BrokerFactory = (url: string) => Broker;

/**
 * The operator only produces: workers store the results (their boot fails without a backend) and the pipeline
 * engine reads them from the Pipeline's own results URL, so its brokers do not look for a process-wide backend.
 */
export function operatorBroker(url: string): Broker {
  const middleware = defaultMiddleware().map((m) => (m instanceof Results ? new Results({ checkOnEnqueue: false }) : m));
  // The brokers never call the RabbitMQ management API themselves (an empty URL: none, whatever
  // TROUPE_RABBITMQ_MANAGEMENT_URL says): the backlog reader does, per pool, so that a failing management API costs
  // only the in-flight figure instead of the whole reading.
  const options: RabbitmqBrokerOptions = { middleware, managementUrl: "" };
  return createBroker(url, options);
}

/**
 * The operator's broker connections: one per broker URL, reused across polls and reconciles. A failed call drops the
 * connection so the next one reconnects. Calls are bounded by a timeout so an unreachable broker never stalls a
 * reconcile.
 */
export class BrokerConnections {
  private readonly brokers = new Map<string, Broker>();

  constructor(
    private readonly factory: BrokerFactory = operatorBroker,
    private readonly timeoutMs = 3000,
  ) {}

  /** Run `fn` with a connected broker for `url`. */
  async use<T>(url: string, what: string, fn: (broker: Broker) => Promise<T>): Promise<T> {
    let broker = this.brokers.get(url);
    if (!broker) {
      broker = this.factory(url);
      this.brokers.set(url, broker);
    }
    const connected = broker;
    try {
      return await withTimeout(
        (async () => {
          await connected.connect();
          return fn(connected);
        })(),
        this.timeoutMs,
        `${what} on ${redactUrl(url)}`,
      );
    } catch (err) {
      if (this.brokers.get(url) === connected) this.brokers.delete(url);
      connected.close().catch(() => undefined);
      throw err;
    }
  }

  queueStats(url: string, queues: readonly string[]): Promise<QueueStats[]> {
    return this.use(url, "reading queue depth", (broker) => Promise.all(queues.map((q) => broker.queueStats(q))));
  }

  async close(): Promise<void> {
    const brokers = [...this.brokers.values()];
    this.brokers.clear();
    await Promise.allSettled(brokers.map((b) => b.close()));
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
