import type { ActorOverrideOptions, ActorResource } from "../api/types.js";

/**
 * The overrides file of a namespace: `{ actorName: options }`. The oldest Actor wins when two declare the same actor
 * name; the others are reported as duplicates.
 */
export function actorOverrides(actors: readonly ActorResource[]): { overrides: Record<string, ActorOverrideOptions>; duplicates: Set<string> } {
  const ordered = [...actors].sort((a, b) => (a.metadata.creationTimestamp ?? "").localeCompare(b.metadata.creationTimestamp ?? "") || a.metadata.name.localeCompare(b.metadata.name));
  const overrides: Record<string, ActorOverrideOptions> = {};
  const duplicates = new Set<string>();
  for (const actor of ordered) {
    if (actor.spec.actorName in overrides) duplicates.add(actor.metadata.name);
    else overrides[actor.spec.actorName] = { ...(actor.spec.options ?? {}) };
  }
  return { overrides: Object.fromEntries(Object.entries(overrides).sort(([a], [b]) => a.localeCompare(b))), duplicates };
}
