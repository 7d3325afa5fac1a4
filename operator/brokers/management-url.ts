import type { WorkerPoolSpec } from "../api/types.js";

/** Reads one key of a Secret of the pool's namespace; undefined when the Secret or the key is missing. */
export type SecretReader = (name: string, key: string) => Promise<string | undefined> | string | undefined;

/** A management API URL (with credentials), or why the configured one cannot be used; neither: none configured. */
export interface ManagementEndpoint {
  url?: string;
  problem?: string;
}

/**
 * The RabbitMQ management API URL a pool's backlog is read with: `spec.broker.management` (the URL inline or under
 * the Secret's `url` key, the Secret's `username` and `password` as its credentials), else the operator's
 * TROUPE_RABBITMQ_MANAGEMENT_URL (the chart's `operator.rabbitmqManagement` value). `problem` says why a configured one
 * cannot be used.
 */
export async function managementUrlOf(spec: WorkerPoolSpec, readSecret: SecretReader): Promise<ManagementEndpoint> {
  const management = spec.broker.management;
  if (!management) return { url: process.env.TROUPE_RABBITMQ_MANAGEMENT_URL || undefined };
  const secret = management.secretRef?.name;
  const value = async (key: string) => (secret === undefined ? undefined : await readSecret(secret, key));
  const base = (await value("url")) ?? management.url;
  if (base === undefined) return { problem: `spec.broker.management: no url, and Secret ${secret} has no url key` };
  let url: URL;
  try {
    url = new URL(base);
  } catch {
    return { problem: "spec.broker.management: the URL is not a valid http(s) URL" };
  }
  const [username, password] = [await value("username"), await value("password")];
  // The setters percent-encode what a URL's userinfo cannot hold as is.
  if (username !== undefined) url.username = username;
  if (password !== undefined) url.password = password;
  return { url: url.toString() };
}
