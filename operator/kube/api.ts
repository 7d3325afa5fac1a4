import * as k8s from "@kubernetes/client-node";
import { GROUP, VERSION, type ObjectMeta } from "../api/types.js";

/** A resource type addressed by group ("" for the core group), version and plural. */
export interface ResourceRef {
  group: string;
  version: string;
  plural: string;
}

export const WORKERPOOLS: ResourceRef = { group: GROUP, version: VERSION, plural: "workerpools" };
export const ACTORS: ResourceRef = { group: GROUP, version: VERSION, plural: "actors" };
export const PIPELINES: ResourceRef = { group: GROUP, version: VERSION, plural: "pipelines" };
export const DEPLOYMENTS: ResourceRef = { group: "apps", version: "v1", plural: "deployments" };
export const LEASES: ResourceRef = { group: "coordination.k8s.io", version: "v1", plural: "leases" };
export const EVENTS: ResourceRef = { group: "events.k8s.io", version: "v1", plural: "events" };
export const PODMONITORS: ResourceRef = { group: "monitoring.coreos.com", version: "v1", plural: "podmonitors" };
export const SERVICES: ResourceRef = { group: "", version: "v1", plural: "services" };
export const CONFIGMAPS: ResourceRef = { group: "", version: "v1", plural: "configmaps" };
export const SECRETS: ResourceRef = { group: "", version: "v1", plural: "secrets" };
export const PODS: ResourceRef = { group: "", version: "v1", plural: "pods" };

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/**
 * Any object with Kubernetes metadata, as plain JSON. (Timestamps are left to the index signature: the client's
 * informer types declare them as Date, while the JSON has strings.)
 */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: Omit<ObjectMeta, "creationTimestamp" | "deletionTimestamp"> & { ownerReferences?: OwnerReference[]; [key: string]: unknown };
  [key: string]: unknown;
}

export interface KubeApiOptions {
  /** Told of every object a write returned (the informer caches use it to read their own writes). */
  onWrite?: (r: ResourceRef, object: KubeObject) => void;
  /**
   * Every request is aborted after this long. Keep it shorter than the leader election's renew deadline, so a hung
   * call can never keep a leader acting past it (default 5 s).
   */
  timeoutMs?: number;
}

const MERGE_PATCH = "application/merge-patch+json";
const WATCH_TIMEOUT_SECONDS = { min: 300, max: 600 };

/** A request aborted because the process stopped leading: nothing it would have written may be written. */
export class NotLeadingError extends Error {
  constructor() {
    super("this operator no longer holds the leader lease");
  }
}

/**
 * The operator's one way to the API server: plain JSON for every group (no model classes, so objects round-trip
 * unchanged), each request bounded by a timeout, and, once `fenced`, aborted the moment leadership is lost. Errors
 * are the client's ApiException (`code`, `body`), so callers branch on the HTTP status.
 */
export class KubeApi {
  private readonly server: string;
  private readonly http = new k8s.IsomorphicFetchHttpLibrary();
  readonly timeoutMs: number;

  constructor(
    readonly kubeConfig: k8s.KubeConfig,
    private readonly options: KubeApiOptions = {},
    private readonly fence?: AbortSignal,
  ) {
    const cluster = kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error("the kubeconfig names no current cluster");
    this.server = cluster.server.replace(/\/+$/, "");
    this.timeoutMs = options.timeoutMs ?? 5_000;
  }

  /** The same API whose requests stop with `signal`: in flight ones are aborted, new ones refused. */
  fenced(signal: AbortSignal): KubeApi {
    return new KubeApi(this.kubeConfig, this.options, signal);
  }

  async get<T extends KubeObject>(r: ResourceRef, namespace: string | undefined, name: string, timeoutMs?: number): Promise<T | undefined> {
    try {
      return await this.request<T>("GET", pathOf(r, namespace, name), { timeoutMs });
    } catch (err) {
      if (errorCode(err) === 404) return undefined;
      throw err;
    }
  }

  async list<T extends KubeObject>(r: ResourceRef, namespace: string | undefined, labelSelector?: string): Promise<T[]> {
    return (await this.listObject<T>(r, namespace, labelSelector)).items;
  }

  create<T extends KubeObject>(r: ResourceRef, namespace: string | undefined, body: KubeObject, timeoutMs?: number): Promise<T> {
    return this.write<T>(r, "POST", pathOf(r, namespace), { body, timeoutMs });
  }

  /** PUT: the whole object, with `metadata.resourceVersion` for a compare-and-swap (409 when someone wrote first). */
  replace<T extends KubeObject>(r: ResourceRef, namespace: string | undefined, name: string, body: KubeObject): Promise<T> {
    return this.write<T>(r, "PUT", pathOf(r, namespace, name), { body });
  }

  /** RFC 7386 merge patch; include `metadata.resourceVersion` in the patch for an optimistic-concurrency write. */
  patch<T extends KubeObject>(r: ResourceRef, namespace: string | undefined, name: string, patch: object, timeoutMs?: number): Promise<T> {
    return this.write<T>(r, "PATCH", pathOf(r, namespace, name), { body: patch, contentType: MERGE_PATCH, timeoutMs });
  }

  /** Merge patch of the status subresource; with `resourceVersion`, only if the object is still at that version. */
  patchStatus<T extends KubeObject>(r: ResourceRef, namespace: string, name: string, status: object, resourceVersion?: string): Promise<T> {
    const body = resourceVersion === undefined ? { status } : { metadata: { resourceVersion }, status };
    return this.write<T>(r, "PATCH", `${pathOf(r, namespace, name)}/status`, { body, contentType: MERGE_PATCH });
  }

  private async write<T extends KubeObject>(r: ResourceRef, method: string, path: string, init: Parameters<KubeApi["request"]>[2]): Promise<T> {
    const written = await this.request<T>(method, path, init);
    this.options.onWrite?.(r, written);
    return written;
  }

  /**
   * An informer (list + watch) over one namespace, or all namespaces when `namespace` is undefined. Its watches ask
   * the server to end them after 5-10 minutes, as client-go's reflector does, so a connection that went quiet
   * without closing is replaced rather than trusted forever.
   */
  informer<T extends KubeObject>(r: ResourceRef, namespace: string | undefined, labelSelector?: string): k8s.Informer<T> & k8s.ObjectCache<T> {
    const path = pathOf(r, namespace);
    const watch = new k8s.Watch(this.kubeConfig);
    const recycling = {
      watch: (watchPath: string, query: Record<string, string | number | boolean | undefined>, callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void, done: (err: unknown) => void) => {
        const timeoutSeconds = WATCH_TIMEOUT_SECONDS.min + Math.floor(Math.random() * (WATCH_TIMEOUT_SECONDS.max - WATCH_TIMEOUT_SECONDS.min));
        return watch.watch(watchPath, { ...query, timeoutSeconds, allowWatchBookmarks: true }, callback, done);
      },
    } as unknown as k8s.Watch;
    return new k8s.ListWatch<T>(path, recycling, () => this.listObject<T>(r, namespace, labelSelector), false, labelSelector);
  }

  private listObject<T extends KubeObject>(r: ResourceRef, namespace: string | undefined, labelSelector?: string): Promise<k8s.KubernetesListObject<T>> {
    return this.request<k8s.KubernetesListObject<T>>("GET", pathOf(r, namespace), { query: labelSelector ? { labelSelector } : undefined });
  }

  private async request<T>(method: string, path: string, { body, contentType, query, timeoutMs }: { body?: object; contentType?: string; query?: Record<string, string>; timeoutMs?: number } = {}): Promise<T> {
    if (this.fence?.aborted) throw new NotLeadingError();
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(query ?? {})) url.searchParams.set(k, v);
    const context = new k8s.RequestContext(url.toString(), method as k8s.HttpMethod);
    context.setHeaderParam("Accept", "application/json");
    if (body !== undefined) {
      context.setHeaderParam("Content-Type", contentType ?? "application/json");
      context.setBody(JSON.stringify(body));
    }
    const limit = timeoutMs ?? this.timeoutMs;
    const timeout = AbortSignal.timeout(limit);
    context.setSignal(this.fence ? AbortSignal.any([timeout, this.fence]) : timeout);
    await this.kubeConfig.applySecurityAuthentication(context);
    let text: string;
    let response: k8s.ResponseContext;
    try {
      response = await this.http.send(context).toPromise();
      text = await response.body.text();
    } catch (err) {
      if (this.fence?.aborted) throw new NotLeadingError();
      if (timeout.aborted) throw new Error(`${method} ${path}: no answer from the API server within ${limit} ms`);
      throw err;
    }
    if (response.httpStatusCode >= 400) throw new k8s.ApiException(response.httpStatusCode, `${method} ${path}`, parseBody(text), response.headers);
    return parseBody(text) as T;
  }
}

/** The URL path of a collection, an object, for the core group (`/api/v1`) or any other (`/apis/group/version`). */
function pathOf(r: ResourceRef, namespace: string | undefined, name?: string): string {
  const base = r.group ? `/apis/${r.group}/${r.version}` : `/api/${r.version}`;
  const scope = namespace === undefined ? "" : `/namespaces/${encodeURIComponent(namespace)}`;
  return `${base}${scope}/${r.plural}${name === undefined ? "" : `/${encodeURIComponent(name)}`}`;
}

function parseBody(text: string): unknown {
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The HTTP status of a failed API call, if it has one. */
export function errorCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === "number" ? code : undefined;
}

/** A short, credential-free description of an API error for logs, events and status. */
export function describeApiError(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  if (typeof body === "string") {
    try {
      const status = JSON.parse(body) as { message?: string };
      if (status.message) return status.message;
    } catch {
      // not JSON: fall through to the error's own message
    }
  }
  if (body && typeof body === "object" && typeof (body as { message?: unknown }).message === "string") return (body as { message: string }).message;
  return err instanceof Error ? err.message : String(err);
}

/** Is this object controlled by `owner` (its controller owner reference carries the owner's uid)? */
export function isControlledBy(child: KubeObject | undefined, owner: { metadata: { uid?: string } }): boolean {
  return Boolean(child?.metadata.ownerReferences?.some((r) => r.controller && r.uid === owner.metadata.uid));
}
