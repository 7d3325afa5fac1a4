import { EventEmitter } from "node:events";
import type http from "node:http";
import { hostname } from "node:os";
import type * as k8s from "@kubernetes/client-node";
import { closeServer } from "../worker/http-close.js";
import { getLogger } from "../worker/logging.js";
import type { ResultBackend } from "../worker/results/backend.js";
import { createResultBackend } from "../worker/setup.js";
import type { ActorResource, PipelineResource, WorkerPool } from "./api/types.js";
import { BrokerConnections, operatorBroker, type BrokerFactory } from "./brokers/connections.js";
import { ActorReconciler } from "./controllers/actor-controller.js";
import { ActorScheduleRunner } from "./controllers/actor-schedules.js";
import type { OperatorContext } from "./controllers/context.js";
import { PipelineReconciler } from "./controllers/pipeline-controller.js";
import { WorkerPoolReconciler } from "./controllers/workerpool-controller.js";
import { ACTORS, DEPLOYMENTS, KubeApi, PIPELINES, PODS, SECRETS, SERVICES, WORKERPOOLS, type KubeObject, type ResourceRef } from "./kube/api.js";
import { ObjectCaches } from "./kube/cache.js";
import { MANAGED_BY, METRICS_PORT, POOL_LABEL, selectorString } from "./resources/labels.js";
import { secretData } from "./resources/secret-refs.js";
import { Controller } from "./runtime/controller.js";
import { EventRecorder } from "./runtime/events.js";
import { startHttpServer } from "./runtime/http-server.js";
import { RestartingInformer } from "./runtime/informers.js";
import { LeaderElector, type LeaderElectionOptions } from "./runtime/leader-election.js";
import { OperatorMetrics } from "./runtime/metrics.js";
import { BacklogSizer } from "./scaling/backlog-sizer.js";

export interface OperatorOptions {
  kubeConfig: k8s.KubeConfig;
  /** Namespaces to watch; all namespaces when empty or unset. */
  namespaces?: string[];
  /** Lease-based leader election; off when unset (a single replica). */
  leaderElection?: Omit<LeaderElectionOptions, "identity"> & { identity?: string };
  /** Port of /metrics, /healthz, /readyz (0: any free port; unset: no server). */
  port?: number;
  host?: string;
  /** Reconcile every object at least this often even without events (default 5 minutes). */
  resyncMs?: number;
  brokerFactory?: BrokerFactory;
  brokerTimeoutMs?: number;
  resultBackendFactory?: (url: string) => ResultBackend;
  /** Where a pod serves its worker metrics (default http://<podIP>:9191/metrics). */
  podMetricsUrl?: OperatorContext["podMetricsUrl"];
  metrics?: OperatorMetrics;
  /** The clock every controller, the caches, the work queues and leader election read (default: the system's). */
  now?: () => Date;
  /**
   * Every API request is cut off after this long (default 5 s, and at most three quarters of the renew deadline with
   * leader election, so no request can keep a leader acting past it).
   */
  apiTimeoutMs?: number;
  /** How long API discovery answers (is the PodMonitor CRD installed?) are reused (default 60 s). */
  discoveryRefreshMs?: number;
  /** How often active Pipeline runs are checked against the results backend (default 2 s). */
  pipelineFollowMs?: number;
}

const log = getLogger("operator");

/**
 * The Troupe operator: informers over WorkerPools, Actors, Pipelines and the Deployments it owns feed three
 * level-triggered controllers. With leader election only the lease holder runs controllers; the others stand by.
 * Emits `leading` when controllers start and `lostLeadership` when the lease is lost (the CLI then exits so the pod
 * restarts cleanly, as client-go operators do).
 */
export class Operator extends EventEmitter {
  readonly api: KubeApi;
  readonly metrics: OperatorMetrics;
  private readonly connections: BrokerConnections;
  /** Owns the Redis clients it reads delayed etas with (one per broker URL), closed with the connections. */
  private readonly scaler: BacklogSizer;
  private readonly schedules: ActorScheduleRunner;
  private readonly controllers: Record<"workerpool" | "actor" | "pipeline", Controller>;
  private readonly caches: ObjectCaches;
  private readonly informers: RestartingInformer[] = [];
  private readonly elector: LeaderElector | undefined;
  /** Aborted when leadership is lost: every request the controllers have in flight stops, and no new one starts. */
  private readonly leadership = new AbortController();
  private readonly now: () => Date;
  private readonly resultBackends = new Map<string, ResultBackend>();
  private server: http.Server | undefined;
  private resyncTimer: NodeJS.Timeout | undefined;
  private running = false;
  private synced = false;
  private stopping = false;

  constructor(private readonly options: OperatorOptions) {
    super();
    const now = (this.now = options.now ?? (() => new Date()));
    const clock = () => now().getTime();
    const renewDeadlineMs = options.leaderElection ? (options.leaderElection.renewDeadlineMs ?? 10_000) : Infinity;
    this.caches = new ObjectCaches(clock);
    this.api = new KubeApi(options.kubeConfig, {
      timeoutMs: Math.min(options.apiTimeoutMs ?? 5_000, Math.floor(renewDeadlineMs * 0.75)),
      onWrite: (ref, object) => this.caches.wrote(ref, object),
    });
    const api = options.leaderElection ? this.api.fenced(this.leadership.signal) : this.api;
    this.metrics = options.metrics ?? new OperatorMetrics();
    this.connections = new BrokerConnections(options.brokerFactory, options.brokerTimeoutMs);
    this.scaler = new BacklogSizer(this.connections);
    this.schedules = new ActorScheduleRunner({
      brokerFactory: options.brokerFactory ?? operatorBroker,
      now: clock,
      counters: this.metrics,
      // The Actor's status shows the tick just fired.
      onFire: (owner) => this.controllers.actor.enqueue(`${owner.slice(0, owner.indexOf("/"))}/`),
    });
    const ctx: OperatorContext = {
      api,
      cache: this.caches,
      events: new EventRecorder(api, "troupe.dev/operator", options.leaderElection?.identity ?? hostname(), undefined, now),
      metrics: this.metrics,
      connections: this.connections,
      scaler: this.scaler,
      schedules: this.schedules,
      pools: (ns) => this.caches.list<WorkerPool & KubeObject>(WORKERPOOLS, ns),
      actors: (ns) => this.caches.list<ActorResource & KubeObject>(ACTORS, ns),
      pipelines: (ns) => this.caches.list<PipelineResource & KubeObject>(PIPELINES, ns),
      secrets: (ns) => (name, key) => secretData(this.caches.get<KubeObject & { data?: Record<string, string> }>(SECRETS, ns, name), key),
      podMetricsUrl: options.podMetricsUrl ?? ((pod) => (pod.status?.podIP ? `http://${pod.status.podIP}:${METRICS_PORT}/metrics` : undefined)),
      resultBackend: (url) => this.resultBackend(url),
      enqueue: (controller, key) => this.controllers[controller].enqueue(key),
      now,
      discoveryRefreshMs: options.discoveryRefreshMs ?? 60_000,
      pipelineFollowMs: options.pipelineFollowMs ?? 2_000,
    };
    this.controllers = {
      workerpool: new Controller("workerpool", new WorkerPoolReconciler(ctx).reconcile, this.metrics, { now: clock }),
      actor: new Controller("actor", new ActorReconciler(ctx).reconcile, this.metrics, { workers: 1, now: clock }),
      pipeline: new Controller("pipeline", new PipelineReconciler(ctx).reconcile, this.metrics, { now: clock }),
    };
    if (options.leaderElection) {
      this.elector = new LeaderElector(this.api, { ...options.leaderElection, identity: options.leaderElection.identity ?? `${hostname()}-${process.pid}`, now });
    }
  }

  get port(): number | undefined {
    const address = this.server?.address();
    return address && typeof address === "object" ? address.port : undefined;
  }

  get isLeading(): boolean {
    return this.running;
  }

  async start(): Promise<void> {
    if (this.options.port !== undefined) {
      this.server = await startHttpServer(this.options.port, this.options.host ?? "0.0.0.0", this.metrics.registry, {
        healthy: () => !this.stopping,
        ready: () => !this.stopping && (this.elector ? !this.running || this.synced : this.synced),
      });
    }
    if (!this.elector) {
      await this.startControllers();
      return;
    }
    this.elector.on("started", () => {
      this.metrics.isLeader.set(1);
      this.startControllers().catch((err) => log.critical("controllers failed to start", { err }));
    });
    this.elector.on("stopped", () => {
      // Nothing the old term started may reach the API server any more; a controller set is not restarted
      // in-process: the caller exits and a fresh process campaigns again.
      this.leadership.abort();
      this.elector?.abandon();
      this.metrics.isLeader.set(0);
      void this.stopControllers().then(() => this.emit("lostLeadership"));
    });
    this.elector.start();
  }

  private async startControllers(): Promise<void> {
    if (this.running || this.stopping) return;
    this.running = true;
    const scopes = this.options.namespaces?.length ? this.options.namespaces : [undefined];
    const poolsOf = (o: KubeObject) => this.caches.list<WorkerPool & KubeObject>(WORKERPOOLS, o.metadata.namespace!);
    const ownerPool = (o: KubeObject) => {
      const owner = o.metadata.ownerReferences?.find((r) => r.kind === "WorkerPool");
      if (owner) this.controllers.workerpool.enqueue(`${o.metadata.namespace}/${owner.name}`);
    };
    for (const namespace of scopes) {
      this.watch(WORKERPOOLS, namespace, undefined, (o) => {
        this.controllers.workerpool.enqueue(keyOf(o));
        this.controllers.actor.enqueue(`${o.metadata.namespace}/`);
      }, true);
      this.watch(ACTORS, namespace, undefined, (o) => {
        this.controllers.actor.enqueue(`${o.metadata.namespace}/`);
        for (const pool of poolsOf(o)) this.controllers.workerpool.enqueue(keyOf(pool));
      }, true);
      this.watch(PIPELINES, namespace, undefined, (o) => this.controllers.pipeline.enqueue(keyOf(o)), true);
      this.watch(DEPLOYMENTS, namespace, selectorString(MANAGED_BY), ownerPool);
      this.watch(SERVICES, namespace, selectorString(MANAGED_BY), ownerPool);
      // The pools' pods, read every poll for their in-flight counts and before a scale-down; polls act on them.
      this.watch(PODS, namespace, POOL_LABEL, () => undefined);
      // Broker URLs come from Secrets: a changed one is acted on at once rather than at the next poll.
      this.watch(SECRETS, namespace, undefined, (o) => {
        for (const pool of poolsOf(o)) if ([pool.spec.broker.secretRef.name, pool.spec.results?.secretRef.name].includes(o.metadata.name)) this.controllers.workerpool.enqueue(keyOf(pool));
      });
    }
    // As controller-runtime does, reconcile only from synced caches: a Secret or Deployment not listed yet would
    // look missing.
    await Promise.all(this.informers.map((i) => i.start()));
    if (!this.running) return;
    for (const c of Object.values(this.controllers)) c.start();
    this.synced = true;
    const resyncMs = this.options.resyncMs ?? 300_000;
    this.resyncTimer = setInterval(() => this.resync(), resyncMs);
    this.resyncTimer.unref();
    log.info("controllers started", { namespaces: this.options.namespaces?.length ? this.options.namespaces : "all" });
    this.emit("leading");
  }

  /**
   * Informer handlers for one resource. With `specOnly`, updates that change neither generation nor labels (the
   * operator's own status writes) are not passed on: they would only re-reconcile what was just reconciled.
   */
  private watch(ref: ResourceRef, namespace: string | undefined, labelSelector: string | undefined, onChange: (o: KubeObject) => void, specOnly = false): void {
    const informer = this.api.informer<KubeObject>(ref, namespace, labelSelector);
    const seen = new Map<string, string>();
    const signature = (o: KubeObject) => JSON.stringify([o.metadata.generation, o.metadata.labels ?? {}, o.metadata.deletionTimestamp ?? null]);
    informer.on("add", (o) => {
      seen.set(keyOf(o), signature(o));
      onChange(o);
    });
    informer.on("update", (o) => {
      if (specOnly && seen.get(keyOf(o)) === signature(o)) return;
      seen.set(keyOf(o), signature(o));
      onChange(o);
    });
    informer.on("delete", (o) => {
      seen.delete(keyOf(o));
      onChange(o);
    });
    this.caches.add(ref, namespace, informer);
    this.informers.push(new RestartingInformer(informer, `${ref.plural} in ${namespace ?? "all namespaces"}`, () => this.now().getTime()));
  }

  /** Enqueue every cached object: the periodic resync of a level-triggered controller. */
  private resync(): void {
    for (const { ref, informer } of this.caches.all) {
      for (const o of informer.list()) {
        if (ref === WORKERPOOLS) this.controllers.workerpool.enqueue(keyOf(o));
        else if (ref === ACTORS) this.controllers.actor.enqueue(`${o.metadata.namespace}/`);
        else if (ref === PIPELINES) this.controllers.pipeline.enqueue(keyOf(o));
      }
    }
  }

  private resultBackend(url: string): ResultBackend {
    let backend = this.resultBackends.get(url);
    if (!backend) {
      backend = (this.options.resultBackendFactory ?? createResultBackend)(url);
      this.resultBackends.set(url, backend);
    }
    return backend;
  }

  private async stopControllers(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    this.synced = false;
    clearInterval(this.resyncTimer);
    // First, so that no tick is tried after leadership is lost (a new leader's store election would refuse it anyway).
    await this.schedules.stop();
    await Promise.allSettled(this.informers.map((i) => i.stop()));
    this.informers.length = 0;
    this.caches.clear();
    await Promise.all(Object.values(this.controllers).map((c) => c.stop()));
  }

  /** Graceful shutdown: finish reconciles in progress, release the lease, close connections and the HTTP server. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    await this.stopControllers();
    await this.elector?.release();
    await this.scaler.close();
    await this.connections.close();
    await Promise.allSettled([...this.resultBackends.values()].map((b) => b.close()));
    if (this.server) await closeServer(this.server);
    log.info("operator stopped");
  }

  /** Stop abruptly, keeping the lease, as a crashed process would (tests of failover). */
  async crash(): Promise<void> {
    this.stopping = true;
    this.elector?.abandon();
    await this.stopControllers();
    await this.scaler.close();
    await this.connections.close();
    if (this.server) await closeServer(this.server);
  }
}

function keyOf(o: KubeObject): string {
  return `${o.metadata.namespace}/${o.metadata.name}`;
}
