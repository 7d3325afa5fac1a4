import { errorCode, isControlledBy, type KubeApi, type KubeObject, type ResourceRef } from "./api.js";

export type Applied<T extends KubeObject> =
  | { operation: "created" | "updated" | "unchanged"; object: T }
  /** An object of that name exists and its controller is not `owner`: it was left alone. */
  | { operation: "taken"; object: KubeObject };

/**
 * Make the object `desired` names exist as wanted, as controller-runtime's `controllerutil.CreateOrUpdate` does:
 * create it when absent (a 409 means another writer was first, so the live object is read and updated instead);
 * otherwise `mutate` turns the live object into what it should be, or says it already is (undefined), and the result
 * is written with PUT and the live resourceVersion, so a concurrent change is a 409 and a retry, never lost.
 *
 * `current` is what the informer cache holds (undefined when it has not seen the object); with `owner`, an object
 * someone else controls is reported as taken rather than overwritten.
 */
export async function createOrUpdate<T extends KubeObject>(
  api: KubeApi,
  ref: ResourceRef,
  desired: KubeObject,
  { current, owner, mutate }: { current: T | undefined; owner?: { metadata: { uid?: string } }; mutate: (live: T) => KubeObject | undefined },
): Promise<Applied<T>> {
  const { namespace, name } = desired.metadata;
  let live = current;
  if (!live) {
    try {
      return { operation: "created", object: await api.create<T>(ref, namespace, desired) };
    } catch (err) {
      if (errorCode(err) !== 409) throw err;
      live = await api.get<T>(ref, namespace, name);
      if (!live) throw err;
    }
  }
  if (owner && !isControlledBy(live, owner)) return { operation: "taken", object: live };
  const next = mutate(live);
  if (!next) return { operation: "unchanged", object: live };
  const body = { ...next, metadata: { ...next.metadata, resourceVersion: live.metadata.resourceVersion } };
  return { operation: "updated", object: await api.replace<T>(ref, namespace, name, body) };
}

/**
 * Does `live` hold every field `desired` sets, with the same value? Fields only `live` has (defaults the API
 * server filled in, fields others own) do not matter; lists must have the same length, element by element.
 */
export function covers(live: unknown, desired: unknown): boolean {
  if (desired === undefined) return true;
  if (Array.isArray(desired)) return Array.isArray(live) && live.length === desired.length && desired.every((d, i) => covers(live[i], d));
  if (desired !== null && typeof desired === "object") {
    if (live === null || typeof live !== "object" || Array.isArray(live)) return false;
    return Object.entries(desired).every(([k, v]) => covers((live as Record<string, unknown>)[k], v));
  }
  return live === desired;
}

/**
 * Keys of `desired` win; of `live`'s other keys, those in `dropped` (keys the writer set before and no longer sets)
 * go, the rest (what others added) stay.
 */
export function mergeKeys(live: Record<string, string> | undefined, desired: Record<string, string> | undefined, dropped: readonly string[] = []): Record<string, string> | undefined {
  const kept = Object.fromEntries(Object.entries(live ?? {}).filter(([k]) => !dropped.includes(k)));
  const merged = { ...kept, ...(desired ?? {}) };
  return Object.keys(merged).length ? merged : undefined;
}
