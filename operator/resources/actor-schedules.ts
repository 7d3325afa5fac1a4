import type { JsonValue } from "../../worker/encoder.js";
import { Message } from "../../worker/message.js";
import { Schedule } from "../../worker/schedules/schedule.js";
import { electionUrlAmong } from "../../worker/schedules/store.js";
import { isMemoryBrokerUrl, parseServiceUrl } from "../../worker/setup.js";
import type { ActorResource, ActorScheduleSpec, WorkerPool } from "../api/types.js";
import { poolQueues } from "./queues.js";
import { secretRefValue, type SecretLookup } from "./secret-refs.js";

/** One schedule of an Actor, built as the code API builds it, and whether the Actor suspends it. */
export interface ActorSchedule {
  schedule: Schedule;
  suspend: boolean;
}

/**
 * The schedules an Actor declares, as `schedule(actor, …)` would build them in code (same names, same fire times,
 * same messages), and a sentence for each one that cannot be built: a cron the CRD's pattern let through but the
 * parser refuses, an unknown zone, a name another schedule of the namespace already has.
 */
export function actorSchedules(actor: ActorResource, taken: Set<string> = new Set()): { schedules: ActorSchedule[]; problems: string[] } {
  const actorName = actor.spec.actorName;
  const queueName = actor.spec.queue ?? "default";
  // The Actor CR has no code: a tick's message is built from the spec, with no options beyond the schedule's tags.
  const target = {
    actorName,
    queueName,
    messageWithOptions: (o: { args?: unknown[]; kwargs?: Record<string, JsonValue>; options?: Record<string, JsonValue> }) =>
      new Message({ queueName, actorName, args: (o.args ?? []) as JsonValue[], kwargs: o.kwargs ?? {}, options: o.options ?? {} }),
  } as unknown as Schedule["actor"];
  const schedules: ActorSchedule[] = [];
  const problems: string[] = [];
  for (const [i, spec] of (actor.spec.schedules ?? []).entries()) {
    const where = `schedules[${i}]${spec.name ? ` (${spec.name})` : ""}`;
    try {
      const schedule = new Schedule(target, whenOf(spec), {
        ...(spec.name !== undefined ? { name: spec.name } : {}),
        ...(spec.tz !== undefined ? { tz: spec.tz } : {}),
        args: spec.args ?? [],
        ...(spec.kwargs ? { kwargs: spec.kwargs as Record<string, JsonValue> } : {}),
        misfire: spec.misfire === "late" ? { graceMs: (spec.graceSeconds ?? 0) * 1000 } : "skip",
      });
      if (taken.has(schedule.name)) {
        problems.push(`${where}: another schedule in the namespace is named "${schedule.name}"; give this one a name`);
        continue;
      }
      taken.add(schedule.name);
      schedules.push({ schedule, suspend: spec.suspend ?? false });
    } catch (err) {
      problems.push(`${where}: ${(err as Error).message}`);
    }
  }
  return { schedules, problems };
}

function whenOf(spec: ActorScheduleSpec): string | { every: string } {
  if (spec.cron !== undefined && spec.every === undefined) return spec.cron;
  if (spec.every !== undefined && spec.cron === undefined) return { every: spec.every };
  throw new Error("give either cron or every");
}

/**
 * The pool whose broker fires an Actor's schedules: the first by name of those consuming its queue, so the operator
 * and `troupe up` pick the same one from the same resources.
 */
export function schedulingPool(actor: ActorResource, pools: readonly WorkerPool[], actors: readonly ActorResource[]): WorkerPool | undefined {
  const queue = actor.spec.queue ?? "default";
  return pools.filter((p) => poolQueues(p, actors).includes(queue)).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))[0];
}

/** Where an Actor's ticks are elected and enqueued: the broker of the pool serving its queue, and for RabbitMQ a Redis. */
export interface ScheduleTarget {
  brokerUrl: string;
  /** The Redis a RabbitMQ pool's workers elect their own schedules on; undefined for a Redis or memory broker. */
  electionUrl?: string;
}

/**
 * The pool's broker and, for a broker that cannot elect, the Redis its workers elect on — the rate limiter's URL in
 * the pool's env, else its results backend (spec.results or TROUPE_RESULTS_URL in env), as the workers read them —
 * so that the operator and workers declaring the same schedule in code share one election per tick.
 */
export function scheduleTarget(pool: WorkerPool, secrets: SecretLookup, brokerUrl?: string): ScheduleTarget | { problem: string } {
  const broker = brokerUrl !== undefined ? { value: brokerUrl } : secretRefValue(secrets, pool.spec.broker.secretRef);
  if (broker.value === undefined) return { problem: broker.problem! };
  const url = broker.value;
  if (isMemoryBrokerUrl(url) || parseServiceUrl(url, "broker").family === "redis") return { brokerUrl: url };
  const env = (name: string) => {
    const entry = pool.spec.env?.find((e) => e.name === name) as { value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } } | undefined;
    const ref = entry?.valueFrom?.secretKeyRef;
    return ref ? secrets(ref.name, ref.key) : entry?.value;
  };
  const results = pool.spec.results ? secretRefValue(secrets, pool.spec.results.secretRef).value : undefined;
  const electionUrl = electionUrlAmong([
    { url: env("TROUPE_RATE_LIMITER_URL"), role: "rate limiter" },
    { url: results ?? env("TROUPE_RESULTS_URL"), role: "results" },
  ]);
  if (!electionUrl) {
    return { problem: `WorkerPool ${pool.metadata.name} is on ${parseServiceUrl(url, "broker").scheme}, which cannot elect a firer per tick: give it spec.results (or TROUPE_RATE_LIMITER_URL in its env) on Redis` };
  }
  return { brokerUrl: url, electionUrl };
}
