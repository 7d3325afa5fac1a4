import { createHash } from "node:crypto";

/** A DNS-1035 label (RFC 1035): what kube-apiserver requires of Service names. */
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const MAX_LABEL = 63;
const SERVICE_SUFFIX = "-metrics";

/** Is `name` a valid Service name? */
export function isDns1035Label(name: string): boolean {
  return name.length <= MAX_LABEL && DNS_1035_LABEL.test(name);
}

/**
 * The metrics Service of a pool: `<pool>-metrics` when that is a valid Service name, as it always was. A pool name
 * a Service cannot carry (dots, a leading digit, over 55 characters) is made into a label — dots become dashes, a
 * leading digit gets a `wp-` prefix, the rest is cut to fit — followed by a hash of the full pool name, so two
 * pools whose cleaned names agree (`mail.pool`, `mail-pool`) still get different Services.
 */
export function metricsServiceName(pool: string): string {
  const plain = `${pool}${SERVICE_SUFFIX}`;
  if (isDns1035Label(plain)) return plain;
  const hash = createHash("sha256").update(pool).digest("hex").slice(0, 8);
  let base = pool.toLowerCase().replace(/[^-a-z0-9]/g, "-");
  if (!/^[a-z]/.test(base)) base = `wp-${base}`;
  base = base.slice(0, MAX_LABEL - SERVICE_SUFFIX.length - hash.length - 1).replace(/-+$/, "");
  return `${base}-${hash}${SERVICE_SUFFIX}`;
}
