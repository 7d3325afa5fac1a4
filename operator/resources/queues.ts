import type { ActorResource, WorkerPool } from "../api/types.js";
import { matchesSelector } from "./labels.js";

/** The queues a pool consumes: its own list plus the queues of the Actors its selector picks. */
export function poolQueues(pool: WorkerPool, actors: readonly ActorResource[]): string[] {
  const queues = new Set(pool.spec.queues ?? []);
  const selector = pool.spec.actorSelector;
  if (selector) for (const a of actors) if (matchesSelector(a.metadata.labels, selector)) queues.add(a.spec.queue ?? "default");
  return [...queues].sort();
}
