import * as k8s from "@kubernetes/client-node";
import { GROUP, VERSION } from "../api/types.js";

/** A resource type addressed by group, version and plural (the CustomObjectsApi path works for any non-core group). */
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

/** Any object with Kubernetes metadata, as plain JSON. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string; generation?: number; labels?: Record<string, string>; annotations?: Record<string, string>; [key: string]: unknown };
  [key: string]: unknown;
}

/** Request options that send a body as an RFC 7386 merge patch. */
export const MERGE_PATCH = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);

/**
 * Plain-JSON access to namespaced resources of non-core groups through the client's CustomObjectsApi (no model
 * classes, so objects round-trip unchanged), and the typed CoreV1Api for the core group.
 */
export class KubeApi {
  readonly custom: k8s.CustomObjectsApi;
  readonly core: k8s.CoreV1Api;

  constructor(readonly kubeConfig: k8s.KubeConfig) {
    this.custom = kubeConfig.makeApiClient(k8s.CustomObjectsApi);
    this.core = kubeConfig.makeApiClient(k8s.CoreV1Api);
  }

  async get<T extends KubeObject>(r: ResourceRef, namespace: string, name: string): Promise<T | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({ ...r, namespace, name })) as T;
    } catch (err) {
      if (errorCode(err) === 404) return undefined;
      throw err;
    }
  }

  async list<T extends KubeObject>(r: ResourceRef, namespace: string | undefined, labelSelector?: string): Promise<T[]> {
    const list = (namespace === undefined
      ? await this.custom.listClusterCustomObject({ ...r, labelSelector })
      : await this.custom.listNamespacedCustomObject({ ...r, namespace, labelSelector })) as { items: T[] };
    return list.items;
  }

  async create<T extends KubeObject>(r: ResourceRef, namespace: string, body: T): Promise<T> {
    return (await this.custom.createNamespacedCustomObject({ ...r, namespace, body })) as T;
  }

  /** RFC 7386 merge patch; include `metadata.resourceVersion` in the patch for an optimistic-concurrency write. */
  async patch<T extends KubeObject>(r: ResourceRef, namespace: string, name: string, patch: object): Promise<T> {
    return (await this.custom.patchNamespacedCustomObject({ ...r, namespace, name, body: patch }, MERGE_PATCH)) as T;
  }

  async patchStatus<T extends KubeObject>(r: ResourceRef, namespace: string, name: string, status: object): Promise<T> {
    return (await this.custom.patchNamespacedCustomObjectStatus({ ...r, namespace, name, body: { status } }, MERGE_PATCH)) as T;
  }

  async replace<T extends KubeObject>(r: ResourceRef, namespace: string, name: string, body: T): Promise<T> {
    return (await this.custom.replaceNamespacedCustomObject({ ...r, namespace, name, body })) as T;
  }

  /** An informer (list + watch) over one namespace, or all namespaces when `namespace` is undefined. */
  informer<T extends KubeObject>(r: ResourceRef, namespace: string | undefined, labelSelector?: string): k8s.Informer<T> & k8s.ObjectCache<T> {
    const path = `/apis/${r.group}/${r.version}${namespace === undefined ? "" : `/namespaces/${namespace}`}/${r.plural}`;
    const list = async () => {
      const body = (namespace === undefined
        ? await this.custom.listClusterCustomObject({ ...r, labelSelector })
        : await this.custom.listNamespacedCustomObject({ ...r, namespace, labelSelector })) as k8s.KubernetesListObject<T>;
      return body;
    };
    return k8s.makeInformer<T>(this.kubeConfig, path, list, labelSelector);
  }

  /** One value of a Secret, decoded; undefined when the Secret or the key is missing. */
  async secretValue(namespace: string, name: string, key: string): Promise<string | undefined> {
    try {
      const secret = await this.core.readNamespacedSecret({ namespace, name });
      const data = secret.data?.[key];
      if (data !== undefined) return Buffer.from(data, "base64").toString("utf8");
      return secret.stringData?.[key];
    } catch (err) {
      if (errorCode(err) === 404) return undefined;
      throw err;
    }
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
