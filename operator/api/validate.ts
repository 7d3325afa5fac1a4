import type { WorkerPool } from "./types.js";

/**
 * Problems the schema cannot catch, or that a cluster without CEL validation (before Kubernetes 1.25) lets through.
 * Reported in status conditions; the operator never crashes on them.
 */
export function workerPoolProblems(pool: WorkerPool, queues: readonly string[]): string[] {
  const problems: string[] = [];
  const a = pool.spec.autoscaling;
  if (a && a.minReplicas !== undefined && a.minReplicas > a.maxReplicas) problems.push(`autoscaling.minReplicas (${a.minReplicas}) exceeds maxReplicas (${a.maxReplicas})`);
  if (!Array.isArray(pool.spec.modules) || pool.spec.modules.length === 0) problems.push("modules must name at least one actor module");
  if (queues.length === 0) {
    problems.push(pool.spec.actorSelector ? "actorSelector matches no Actor in this namespace and no queues are listed" : "no queues: set queues or actorSelector");
  }
  return problems;
}

/** Credentials out of any text bound for logs, events or status: `scheme://user:secret@host` loses its secret. */
export function scrubCredentials(text: string): string {
  return text.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/@\s]*):[^@\s]*@/gi, "$1:***@");
}
