import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import * as k8s from "@kubernetes/client-node";
import { Message, RabbitmqBroker, type Consumer, type MessageProxy } from "troupe";
import { AMQP_URL, uniqueName } from "../support/env.js";
import { createSecret, namespaceWithBroker, operatorSuite, workerPoolManifest, type ApiObject } from "../support/operator.js";
import { managementUrl, RawAmqp } from "../support/rabbitmq.js";
import { freePort } from "../support/redis.js";
import { until } from "../support/wait.js";

/**
 * A worker pod running long messages: its own AMQP connection, a consumer with prefetch 1 that holds each delivery
 * unacked until released (what a worker thread does while an actor runs), and the in-progress gauge a worker
 * exports for what it holds. A real `troupe worker` per pod would be 8 Node processes; worse, with its default
 * prefetch (threads × (2 × concurrency + lookahead) + 64) the first one to connect takes all 8 messages and the
 * other 7 pods have nothing to run, which is why 8 busy pods need one delivery each.
 */
class BusyPod {
  readonly held: MessageProxy[] = [];
  scrapes = 0;
  private readonly broker = new RabbitmqBroker(AMQP_URL, { managementUrl: "" });
  private consumer: Consumer | undefined;

  constructor(
    readonly name: string,
    private readonly queue: string,
  ) {}

  async start(): Promise<void> {
    await this.broker.connect();
    this.consumer = this.broker.consume(this.queue, { prefetch: 1, onMessage: (m) => void this.held.push(m) });
    await this.consumer.start();
  }

  metrics(): string {
    this.scrapes++;
    return `# TYPE dramatiq_messages_inprogress gauge\ndramatiq_messages_inprogress{queue_name="${this.queue}",actor_name="long"} ${this.held.length}\n`;
  }

  /** The long messages end: acked, the gauge back to 0. */
  async finish(): Promise<void> {
    for (const m of this.held.splice(0)) await this.consumer!.ack(m);
  }

  async stop(): Promise<void> {
    await this.consumer?.close();
    await this.broker.close();
  }
}

const condition = (pool: ApiObject, type: string) => (pool.status?.conditions as ApiObject[] | undefined)?.find((c) => c.type === type);
describe("WorkerPool on real RabbitMQ: in-flight messages the broker does not report over AMQP", () => {
  let metricsServer: http.Server;
  let metricsPort: number;
  const pods = new Map<string, BusyPod>();
  const queues: string[] = [];
  const savedManagement = process.env.TROUPE_RABBITMQ_MANAGEMENT_URL;

  /** `count` busy pods of `pool`, in the API (so in the operator's pod cache) and consuming `queue`. */
  const busyPods = async (ns: string, pool: string, queue: string, count: number) => {
    const core = suite.kc.makeApiClient(k8s.CoreV1Api);
    const created: BusyPod[] = [];
    for (let i = 0; i < count; i++) {
      const pod = new BusyPod(`${pool}-${i}`, queue);
      pods.set(pod.name, pod);
      await pod.start();
      await core.createNamespacedPod({ namespace: ns, body: { metadata: { name: pod.name, labels: { "troupe.dev/workerpool": pool } }, spec: { containers: [{ name: "worker", image: "x" }] }, status: { podIP: "10.0.0.1" } } });
      created.push(pod);
    }
    return created;
  };
  const enqueue = async (queue: string, n: number) => {
    queues.push(queue);
    const producer = new RabbitmqBroker(AMQP_URL, { managementUrl: "" });
    await producer.connect();
    await producer.enqueueMany(Array.from({ length: n }, (_, i) => new Message({ queueName: queue, actorName: "long", args: [i] })));
    await producer.close();
  };
  const replicas = (ns: string, name: string) => (suite.fake.get("apps", "deployments", ns, name) as { spec: { replicas: number } } | undefined)?.spec.replicas;

  before(async () => {
    // "No management URL configured": not even the operator-wide default.
    delete process.env.TROUPE_RABBITMQ_MANAGEMENT_URL;
    metricsServer = http.createServer((req, res) => {
      const pod = pods.get((req.url ?? "").split("/")[1]!);
      if (!pod) res.writeHead(404);
      res.end(pod?.metrics());
    });
    await new Promise<void>((resolve) => metricsServer.listen(0, "127.0.0.1", resolve));
    metricsPort = (metricsServer.address() as { port: number }).port;
  });
  const suite = operatorSuite(() => ({ podMetricsUrl: (pod) => `http://127.0.0.1:${metricsPort}/${pod.metadata?.name}/metrics` }));
  after(async () => {
    metricsServer.close();
    for (const pod of pods.values()) await pod.stop();
    const raw = await RawAmqp.open();
    await raw.deleteQueues(...queues);
    await raw.close();
    if (savedManagement !== undefined) process.env.TROUPE_RABBITMQ_MANAGEMENT_URL = savedManagement;
  });

  test("no management API, 8 pods each running a long message and 0 ready: the pool stays at 8", async () => {
    const { fake, kc, cr } = suite;
    const ns = await namespaceWithBroker(kc, AMQP_URL);
    const queue = uniqueName("long");
    const fleet = await busyPods(ns, "longrun", queue, 8);
    await cr.create(
      "workerpools",
      ns,
      workerPoolManifest("longrun", {
        queues: [queue],
        autoscaling: { minReplicas: 0, maxReplicas: 10, targetBacklogPerReplica: 1, pollIntervalSeconds: 1, scaleDownStabilizationSeconds: 0, behavior: { scaleUp: { policies: [{ type: "Pods", value: 10, periodSeconds: 15 }] } } },
      }),
    );
    await enqueue(queue, 8);
    await until(() => replicas(ns, "longrun") === 8, "scale-up to 8 on 8 ready messages");
    await until(() => fleet.every((p) => p.held.length === 1), "each of the 8 pods running one message");

    // From here AMQP shows 0 ready; only the pods' gauges show the 8 in flight.
    const steady = await until(async () => {
      const pool = await cr.get("workerpools", ns, "longrun");
      return pool.status?.queues?.[0]?.ready === 0 && condition(pool, "BacklogComplete")?.reason === "InFlightFromWorkers" ? pool : undefined;
    }, "a status read with 0 ready");
    assert.deepEqual(steady.status.queues, [{ name: queue, ready: 0, delayed: 0, inFlight: 8, dead: 0 }]);
    assert.equal(steady.status.backlog, 8);
    const complete = condition(steady, "BacklogComplete")!;
    assert.equal(complete.status, "True");
    assert.match(complete.message, /in-flight messages from the 8 pods' dramatiq_messages_inprogress: no RabbitMQ management API is configured/);
    const polled = fleet[0]!.scrapes;
    await until(() => fleet[0]!.scrapes >= polled + 5, "five more polls", { timeout: 15_000 });
    assert.equal(replicas(ns, "longrun"), 8, "still 8 after five polls with 0 ready");
    const pool = await cr.get("workerpools", ns, "longrun");
    assert.deepEqual([pool.status.desiredReplicas, condition(pool, "Scaling")!.reason], [8, "Steady"]);
    assert.ok(!fake.list("events.k8s.io", "events", ns).some((e) => e.reason === "ScaledDown"), "never scaled down");

    for (const pod of fleet) await pod.finish();
    await until(() => replicas(ns, "longrun") === 0, "scale-down to 0 once the messages are done");
  });

  test("a configured management API that fails: BacklogComplete=False with why, in-flight from the pods; True again once it answers", async () => {
    const { kc, cr } = suite;
    const real = await managementUrl();
    assert.ok(real, "the RabbitMQ management plugin answers on loopback");
    const ns = await namespaceWithBroker(kc, AMQP_URL);
    const queue = uniqueName("mgmt");
    // A free port nothing listens on: connections are refused.
    const port = await freePort();
    const down = `http://127.0.0.1:${port}`;
    await createSecret(kc, ns, "rabbitmq-management", { url: down, username: "guest", password: "guest" });
    const fleet = await busyPods(ns, "watched", queue, 3);
    await enqueue(queue, 3);
    await until(() => fleet.every((p) => p.held.length === 1), "each of the 3 pods running one message");
    await cr.create(
      "workerpools",
      ns,
      workerPoolManifest("watched", {
        queues: [queue],
        broker: { secretRef: { name: "broker" }, management: { secretRef: { name: "rabbitmq-management" } } },
        autoscaling: { minReplicas: 0, maxReplicas: 5, targetBacklogPerReplica: 1, pollIntervalSeconds: 1, scaleDownStabilizationSeconds: 0 },
      }),
    );
    const failing = await until(async () => {
      const pool = await cr.get("workerpools", ns, "watched");
      // The first poll, before the Deployment exists, reads no pods (InFlightUnknown).
      return condition(pool, "BacklogComplete")?.reason === "ManagementApiFailed" ? pool : undefined;
    }, "BacklogComplete=False ManagementApiFailed");
    const gap = condition(failing, "BacklogComplete")!;
    assert.equal(gap.status, "False");
    assert.match(gap.message, new RegExp(`^the RabbitMQ management API failed: .*http://guest:\\*\\*\\*@127\\.0\\.0\\.1:${port}/ is unreachable.*; in-flight messages from the 3 pods' dramatiq_messages_inprogress instead: the pool does not scale down$`));
    assert.ok(!gap.message.includes("guest:guest"), "the password is not in the message");
    assert.deepEqual(failing.status.queues, [{ name: queue, ready: 0, delayed: 0, inFlight: 3, dead: 0 }], "in-flight from the pods' gauges");

    const base = new URL(real);
    base.username = "";
    base.password = "";
    await kc.makeApiClient(k8s.CoreV1Api).patchNamespacedSecret(
      { namespace: ns, name: "rabbitmq-management", body: { data: { url: Buffer.from(base.toString()).toString("base64") } } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );
    const recovered = await until(async () => {
      const pool = await cr.get("workerpools", ns, "watched");
      return condition(pool, "BacklogComplete")?.status === "True" ? pool : undefined;
    }, "BacklogComplete=True once the management API answers");
    const read = condition(recovered, "BacklogComplete")!;
    assert.deepEqual([read.reason, read.message], ["AllRead", "ready, in-flight and delayed messages of 1 queues read from the broker"]);
    assert.equal(recovered.status.queues[0].inFlight, 3);
    assert.equal(replicas(ns, "watched"), 3);
    for (const pod of fleet) await pod.finish();
    await until(() => replicas(ns, "watched") === 0, "scale-down to 0 once the messages are done");
  });
});
