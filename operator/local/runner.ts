import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { getLogger, redactUrl } from "../../worker/logging.js";
import { autoscalingWithDefaults, type WorkerPool } from "../api/types.js";
import { workerPoolProblems } from "../api/validate.js";
import { BrokerConnections, operatorBroker, type BrokerFactory } from "../brokers/connections.js";
import { ActorScheduleRunner } from "../controllers/actor-schedules.js";
import { managementUrlOf, type ManagementEndpoint } from "../brokers/management-url.js";
import type { SecretRef } from "../api/types.js";
import { actorOverrides } from "../resources/actor-overrides.js";
import { actorSchedules, scheduleTarget, schedulingPool, type ActorSchedule, type ScheduleTarget } from "../resources/actor-schedules.js";
import { ACTORS_FILE } from "../resources/labels.js";
import { poolQueues } from "../resources/queues.js";
import { refKey, secretRefValue, type SecretLookup } from "../resources/secret-refs.js";
import { brokerSettingsEnv, workerArgs } from "../resources/workerpool.js";
import { BacklogSizer, nextPollInMs, type PoolEvaluation } from "../scaling/backlog-sizer.js";
import { LocalPipelines } from "./local-pipelines.js";
import { LocalPool } from "./local-pool.js";
import type { LocalManifests } from "./manifests.js";

export interface LocalRunnerOptions {
  /** The troupe CLI entry point the replicas run (`node <cli> worker …`). */
  cliPath: string;
  /** Broker URL for every pool, instead of their Secrets. */
  brokerUrl?: string;
  brokerFactory?: BrokerFactory;
  /** Called with one human-readable line per scale decision. */
  report?: (line: string) => void;
  stdio?: "inherit" | "ignore";
}

const log = getLogger("up");

interface RunningPool {
  pool: WorkerPool;
  local: LocalPool;
  /** RabbitMQ management API for the pool's in-flight counts. */
  management: ManagementEndpoint;
  /** The last "part of the backlog could not be read" logged, so each change is logged once. */
  backlogGap?: string;
  timer?: NodeJS.Timeout;
}

/**
 * `troupe up`: the WorkerPool reconciler's scaling half (same BacklogSizer, same decision function) driving local worker
 * processes instead of a Deployment. Actor manifests become the overrides file the replicas watch; Pipelines run
 * through the operator's pipeline engine.
 */
export class LocalRunner {
  private readonly connections: BrokerConnections;
  private readonly scaler: BacklogSizer;
  private readonly running: RunningPool[] = [];
  private workDir: string | undefined;
  private pipelines: LocalPipelines | undefined;
  private schedules: ActorScheduleRunner | undefined;
  private stopped = false;

  constructor(
    private readonly manifests: LocalManifests,
    private readonly options: LocalRunnerOptions,
  ) {
    this.connections = new BrokerConnections(options.brokerFactory);
    this.scaler = new BacklogSizer(this.connections);
  }

  /** Check every pool, then start them; throws a clear error before starting anything when a manifest is unusable. */
  async start(): Promise<void> {
    const { pools, actors, pipelines } = this.manifests;
    if (pools.length === 0) throw new Error("no WorkerPool in the manifests");
    const plans = pools.map((pool) => {
      const queues = poolQueues(pool, actors);
      const problems = [...workerPoolProblems(pool, queues), ...missingModules(pool)];
      if (problems.length) throw new Error(`WorkerPool ${pool.metadata.name}: ${problems.join("; ")}`);
      const brokerUrl = this.brokerUrlOf(pool);
      return { pool, queues, brokerUrl };
    });
    const pipelinePlans = pipelines.map((pipeline) => {
      const broker = this.options.brokerUrl ?? this.secretOrEnv(pipeline.spec.broker.secretRef, `Pipeline ${pipeline.metadata.name}`);
      const results = pipeline.spec.results ? this.secret(pipeline.spec.results.secretRef) : broker;
      return { pipeline, urls: { broker, results } };
    });
    const schedulePlans = this.schedulePlans();
    if (pipelinePlans.length) {
      // Runs enqueue before the workers are up; their messages wait in the queues.
      this.pipelines = new LocalPipelines(this.connections, this.options.report ?? (() => undefined));
      this.pipelines.start(pipelinePlans);
    }
    if (schedulePlans.length) await this.startSchedules(schedulePlans);
    this.workDir = await mkdtemp(join(tmpdir(), "troupe-up-"));
    const overridesPath = join(this.workDir, ACTORS_FILE);
    await writeFile(overridesPath, JSON.stringify(actorOverrides(actors).overrides, null, 2));
    for (const { pool, queues, brokerUrl } of plans) {
      const modules = modulePaths(pool);
      const args = workerArgs({ ...pool, spec: { ...pool.spec, modules } }, queues);
      const resultsRef = pool.spec.results?.secretRef;
      const local = new LocalPool({
        name: pool.metadata.name,
        command: [process.execPath, this.options.cliPath, ...args],
        env: {
          ...process.env,
          TROUPE_BROKER_URL: brokerUrl,
          ...brokerSettingsEnv(pool),
          TROUPE_ACTOR_OVERRIDES: overridesPath,
          ...(resultsRef ? { TROUPE_RESULTS_URL: this.secret(resultsRef) } : {}),
        },
        stopTimeoutMs: ((pool.spec.shutdownTimeoutSeconds ?? 30) + 5) * 1000,
        onCrash: this.options.report,
        stdio: this.options.stdio,
      });
      const management = await managementUrlOf(pool.spec, this.secrets);
      if (management.problem) throw new Error(`WorkerPool ${pool.metadata.name}: ${management.problem}`);
      const entry: RunningPool = { pool, local, management };
      this.running.push(entry);
      log.info("pool started", { pool: pool.metadata.name, queues, broker: redactUrl(brokerUrl) });
      await this.tick(entry, queues, brokerUrl);
    }
  }

  private async tick(entry: RunningPool, queues: string[], brokerUrl: string): Promise<void> {
    if (this.stopped) return;
    const { pool, local } = entry;
    const autoscaling = autoscalingWithDefaults(pool.spec.autoscaling);
    if (!autoscaling) {
      await local.scaleTo(pool.spec.replicas ?? 1);
      return;
    }
    const current = local.size;
    const startedAt = Date.now();
    let evaluation: PoolEvaluation | undefined;
    try {
      // Every poll: the replicas' in-progress gauges keep busy ones from being stopped and stand in for in-flight
      // counts the broker cannot give (RabbitMQ without its management API).
      const pods = (await local.replicaLoads()).map((l) => l.load);
      evaluation = await this.scaler.evaluate({ key: pool.metadata.name, spec: autoscaling, brokerUrl, queues, currentReplicas: current, management: entry.management, pods, now: startedAt });
      const { decision, error, completeness } = evaluation;
      const gap = completeness && !completeness.complete ? completeness.message : undefined;
      if (gap !== undefined && gap !== entry.backlogGap) log.warn("part of the backlog could not be read; the pool does not shrink", { pool: pool.metadata.name, detail: gap });
      entry.backlogGap = gap;
      if (error) log.warn("queue depth unavailable; holding the pool's size", { pool: pool.metadata.name, error: error.message });
      log.debug("scale decision", { pool: pool.metadata.name, current, replicas: decision.replicas, reason: decision.reason, detail: decision.message });
      if (decision.replicas !== current) {
        this.options.report?.(`${pool.metadata.name}: ${current} → ${decision.replicas} replicas (${decision.message})`);
        await local.scaleTo(decision.replicas);
      }
    } catch (err) {
      log.error("scaling step failed", { pool: pool.metadata.name, err });
    }
    // One interval from the start of this poll, not its end: reading a long delay queue and starting replicas do not
    // stretch the time until work that arrives now is seen. Sooner when a delayed message enters the horizon first.
    const next = Math.max(0, startedAt + nextPollInMs(autoscaling, evaluation ?? {}, startedAt) - Date.now());
    if (!this.stopped) entry.timer = setTimeout(() => void this.tick(entry, queues, brokerUrl), next);
  }

  /**
   * The Actors' schedules, each on the broker of the first pool (by name) serving its queue, as the operator fires
   * them; an invalid schedule, or one no pool can fire, stops `troupe up` before anything runs.
   */
  private schedulePlans(): { owner: string; target: ScheduleTarget; schedules: ActorSchedule[] }[] {
    const { pools, actors } = this.manifests;
    const taken = new Set<string>();
    return actors
      .filter((a) => a.spec.schedules?.length)
      .map((a) => {
        const { schedules, problems } = actorSchedules(a, taken);
        if (problems.length) throw new Error(`Actor ${a.metadata.name}: ${problems.join("; ")}`);
        const pool = schedulingPool(a, pools, actors);
        if (!pool) throw new Error(`Actor ${a.metadata.name}: no WorkerPool in the manifests consumes queue ${a.spec.queue ?? "default"}, so there is no broker to fire its schedules on`);
        const target = scheduleTarget(pool, this.secrets, this.brokerUrlOf(pool));
        if ("problem" in target) throw new Error(`Actor ${a.metadata.name}: ${target.problem}`);
        return { owner: `local/${a.metadata.name}`, target, schedules };
      });
  }

  /** The manifests are the whole truth at start: each schedule's suspend is applied to the store's pause. */
  private async startSchedules(plans: ReturnType<LocalRunner["schedulePlans"]>): Promise<void> {
    const report = this.options.report;
    this.schedules = new ActorScheduleRunner({
      brokerFactory: this.options.brokerFactory ?? operatorBroker,
      now: Date.now,
      onFire: (_owner, schedule, tick) => report?.(`schedule ${schedule.name}: fired tick ${new Date(tick).toISOString()}`),
    });
    for (const { owner, target, schedules } of plans) {
      const store = await this.schedules.sync(owner, target, schedules.map((s) => ({ ...s, pause: s.suspend })));
      for (const { schedule, suspend } of schedules) report?.(`schedule ${schedule.name}: ${schedule.timetable.description} on ${store}${suspend ? " (suspended)" : ""}`);
    }
  }

  private brokerUrlOf(pool: WorkerPool): string {
    return this.options.brokerUrl ?? this.secretOrEnv(pool.spec.broker.secretRef, `WorkerPool ${pool.metadata.name}`);
  }

  /** A broker URL: the Secret from the manifests, else $TROUPE_BROKER_URL. */
  private secretOrEnv(ref: SecretRef, owner: string): string {
    const fromManifests = secretRefValue(this.secrets, ref).value;
    if (fromManifests !== undefined) return fromManifests;
    if (process.env.TROUPE_BROKER_URL) return process.env.TROUPE_BROKER_URL;
    throw new Error(`${owner}: Secret ${ref.name} key ${refKey(ref)} is not in the manifests: add the Secret, pass --broker, or set TROUPE_BROKER_URL`);
  }

  private secret(ref: SecretRef): string {
    const value = secretRefValue(this.secrets, ref).value;
    if (value === undefined) throw new Error(`Secret ${ref.name} key ${refKey(ref)} is not in the manifests`);
    return value;
  }

  /** The Secret documents of the manifests. */
  private readonly secrets: SecretLookup = (name, key) => this.manifests.secrets.get(`${name}/${key}`);

  /** Stop every replica (SIGTERM, drain within the shutdown timeout) and release the broker connections. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const entry of this.running) clearTimeout(entry.timer);
    await this.schedules?.stop();
    await this.pipelines?.stop();
    await Promise.all(this.running.map((e) => e.local.close()));
    await this.scaler.close();
    await this.connections.close();
    if (this.workDir) await rm(this.workDir, { recursive: true, force: true });
  }
}

/** Module paths are relative to the manifest's directory, as `kubectl apply -f` users write them. */
function modulePaths(pool: LocalManifests["pools"][number]): string[] {
  return (pool.spec.modules ?? []).map((m) => (isAbsolute(m) ? m : resolve(pool.sourceDir, m)));
}

/** A module that is not there would make every replica crash-loop; say so before anything starts. */
function missingModules(pool: LocalManifests["pools"][number]): string[] {
  return modulePaths(pool)
    .filter((path) => !existsSync(path))
    .map((path) => `module ${path} does not exist (module paths are relative to the manifest's directory)`);
}
