/** The annotation the ReplicaSet controller reads to choose which pods to delete first (lowest cost first). */
export const POD_DELETION_COST = "controller.kubernetes.io/pod-deletion-cost";

export interface PodLoad {
  name: string;
  /** Messages the pod is running now; `undefined` when its metrics could not be read. */
  inFlight: number | undefined;
}

/**
 * Deletion cost per pod before a scale-down: the pod's in-flight count, so idle pods go first and busy pods keep
 * their work. A pod whose load is unknown gets the highest cost seen: we do not know it is idle, so it is not
 * preferred for removal.
 */
export function deletionCosts(pods: readonly PodLoad[]): Map<string, number> {
  const known = pods.map((p) => p.inFlight).filter((n): n is number => n !== undefined && Number.isFinite(n) && n >= 0);
  const unknownCost = known.length ? Math.max(...known) : 0;
  return new Map(pods.map((p) => [p.name, p.inFlight !== undefined && Number.isFinite(p.inFlight) && p.inFlight >= 0 ? Math.round(p.inFlight) : unknownCost]));
}
