import type { SecretRef } from "../api/types.js";

/**
 * Where Secret values come from, by Secret name and key: the informer cache in the operator, the Secret documents
 * of the manifests in `troupe up`.
 */
export type SecretLookup = (name: string, key: string) => string | undefined;

/** The key a secretRef names, `url` unless it says otherwise. */
export function refKey(ref: SecretRef): string {
  return ref.key ?? "url";
}

/** The value a secretRef names (a broker or results URL), or why there is none. */
export function secretRefValue(lookup: SecretLookup, ref: SecretRef): { value: string; problem?: undefined } | { value?: undefined; problem: string } {
  const value = lookup(ref.name, refKey(ref));
  return value === undefined ? { problem: `Secret ${ref.name} with key ${refKey(ref)} not found` } : { value };
}

/** One key of a Secret object: `data` is base64, `stringData` (manifests) plain. */
export function secretData(secret: { data?: Record<string, string>; stringData?: Record<string, string> } | undefined, key: string): string | undefined {
  const data = secret?.data?.[key];
  if (data !== undefined) return Buffer.from(data, "base64").toString("utf8");
  return secret?.stringData?.[key];
}
