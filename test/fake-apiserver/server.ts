import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import * as k8s from "@kubernetes/client-node";
import jsonpatch from "fast-json-patch";
import { parse as parseYaml } from "yaml";
import { type Cause, causeText, checkLabels, checkAnnotations, checkMetadata, nameRuleOf } from "./names.js";
import { CrdValidator, type SchemaNode } from "./schema.js";
import { parseFieldSelector, parseLabelSelector } from "./selectors.js";

/**
 * An in-process stand-in for kube-apiserver on 127.0.0.1, for running the real @kubernetes/client-node against.
 * Real semantics where the operator depends on them: resourceVersion and 409 conflicts, list + watch (headers
 * flushed at once, replay from a resourceVersion, bookmarks, 410 Gone after compaction, label and field
 * selectors), status and scale subresources, generation bumped only by spec changes, no-op writes that keep the
 * resourceVersion, finalizers, owner-reference garbage collection, JSON / merge patches, namespaces that must exist,
 * CRDs served as soon as they are created and validated by their structural schema (pruning, defaults, CEL rules).
 * Names per kind, labels, annotations and the resourceVersion precondition are checked as kube-apiserver does (see
 * docs/testing.md for what is and is not modelled). No controllers run: Deployments get no pods and no status unless
 * a test writes them.
 */

type Obj = Record<string, unknown> & { apiVersion?: string; kind?: string; metadata: Meta; status?: unknown };
interface Meta {
  name: string;
  namespace?: string;
  generateName?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: { uid: string; kind: string; name: string; controller?: boolean }[];
  [key: string]: unknown;
}

interface ResourceType {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
  status: boolean;
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath?: string };
  validator?: CrdValidator;
  custom: boolean;
}

interface WatchEvent {
  rv: number;
  type: "ADDED" | "MODIFIED" | "DELETED";
  typeKey: string;
  object: Obj;
  old?: Obj;
}

class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly causes: Cause[] = [],
    readonly details: { name?: string; group?: string; kind?: string } = {},
  ) {
    super(message);
  }
}

/** 422 Invalid as kube-apiserver words it: `Kind.group "name" is invalid: field: message` (several in brackets). */
function invalidError(type: ResourceType, name: string, causes: Cause[]): ApiError {
  const kind = type.group ? `${type.kind}.${type.group}` : type.kind;
  const text = causes.length === 1 ? causeText(causes[0]!) : `[${causes.map(causeText).join(", ")}]`;
  return new ApiError(422, "Invalid", `${kind} "${name}" is invalid: ${text}`, causes, { name, group: type.group, kind: type.kind });
}

const BUILTINS: Omit<ResourceType, "custom">[] = [
  { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false, status: true },
  { group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true, status: true },
  { group: "", version: "v1", plural: "services", kind: "Service", namespaced: true, status: true },
  { group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true, status: false },
  { group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true, status: false },
  { group: "", version: "v1", plural: "events", kind: "Event", namespaced: true, status: false },
  { group: "", version: "v1", plural: "serviceaccounts", kind: "ServiceAccount", namespaced: true, status: false },
  {
    group: "apps", version: "v1", plural: "deployments", kind: "Deployment", namespaced: true, status: true,
    scale: { specReplicasPath: ".spec.replicas", statusReplicasPath: ".status.replicas" },
  },
  { group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true, status: false },
  { group: "events.k8s.io", version: "v1", plural: "events", kind: "Event", namespaced: true, status: false },
  { group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions", kind: "CustomResourceDefinition", namespaced: false, status: true },
];

export interface FakeApiServerOptions {
  /** Directories or files of CRD YAML to serve from the start (e.g. the repository's crds/). */
  crdPaths?: string[];
  /** How often a watch that asked for bookmarks gets one (a real server: about a minute). */
  bookmarkIntervalMs?: number;
  /** Events kept for watch replay; older resource versions get 410 Gone. */
  historyLimit?: number;
}

export interface RecordedRequest {
  method: string;
  path: string;
  contentType?: string;
}

export class FakeApiServer {
  private readonly types = new Map<string, ResourceType>();
  private readonly store = new Map<string, Obj>();
  private history: WatchEvent[] = [];
  private readonly watchers = new Set<(event: WatchEvent) => void>();
  private readonly openWatches = new Set<http.ServerResponse>();
  private rv = 1;
  /** Watches from a resourceVersion at or below this get 410 Gone. */
  private compactedRv = 0;
  private readonly server: http.Server;
  private faults: ((req: RecordedRequest) => number | undefined)[] = [];
  readonly requests: RecordedRequest[] = [];
  port = 0;

  constructor(private readonly options: FakeApiServerOptions = {}) {
    for (const t of BUILTINS) this.types.set(typeKey(t.group, t.plural), { ...t, custom: false });
    for (const ns of ["default", "kube-system"]) this.createInternal(this.typeOf("", "namespaces"), undefined, { metadata: { name: ns } });
    for (const path of options.crdPaths ?? []) {
      for (const doc of loadYamlDocuments(path)) this.createInternal(this.typeOf("apiextensions.k8s.io", "customresourcedefinitions"), undefined, doc);
    }
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err) => sendStatus(res, err instanceof ApiError ? err : new ApiError(500, "InternalError", String(err))));
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as { port: number }).port;
    return this;
  }

  async stop(): Promise<void> {
    this.resetWatches();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** A KubeConfig pointing at this server, as a user's kubeconfig would. */
  kubeConfig(namespace = "default"): k8s.KubeConfig {
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "fake", server: this.url, skipTLSVerify: true }],
      users: [{ name: "tester", token: "test-token" }],
      contexts: [{ name: "fake", cluster: "fake", user: "tester", namespace }],
      currentContext: "fake",
    });
    return kc;
  }

  /** End every open watch, as the API server does when a watch times out; clients re-watch from their last resourceVersion. */
  closeWatches(): void {
    for (const res of this.openWatches) res.end();
    this.openWatches.clear();
  }

  /** Cut every open watch connection, as an API server crash does; the client sees a network error. */
  resetWatches(): void {
    for (const res of this.openWatches) res.destroy();
    this.openWatches.clear();
  }

  /** Forget the watch history, as etcd compaction does: watches from older resource versions get 410 Gone. */
  compact(): void {
    this.compactedRv = this.rv;
    this.history = [];
  }

  /** Answer matching requests with an error status until the returned function is called. */
  injectFault(match: (req: RecordedRequest) => number | undefined): () => void {
    this.faults.push(match);
    return () => {
      this.faults = this.faults.filter((f) => f !== match);
    };
  }

  /** Read an object directly (tests). */
  get(group: string, plural: string, namespace: string | undefined, name: string): Obj | undefined {
    return structuredClone(this.store.get(objectKey(group, plural, namespace, name)));
  }

  /** Every stored object of a type (tests). */
  list(group: string, plural: string, namespace?: string): Obj[] {
    const prefix = `${typeKey(group, plural)}/`;
    return [...this.store.entries()]
      .filter(([k, o]) => k.startsWith(prefix) && (namespace === undefined || o.metadata.namespace === namespace))
      .map(([, o]) => structuredClone(o));
  }

  private typeOf(group: string, plural: string): ResourceType {
    const t = this.types.get(typeKey(group, plural));
    if (!t) throw new ApiError(404, "NotFound", `the server could not find the requested resource (${plural}${group ? "." + group : ""})`);
    return t;
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://fake");
    const record: RecordedRequest = { method: req.method ?? "GET", path: url.pathname + url.search, contentType: req.headers["content-type"] };
    this.requests.push(record);
    for (const fault of this.faults) {
      const code = fault(record);
      if (code) throw new ApiError(code, code === 503 ? "ServiceUnavailable" : "InternalError", `injected fault ${code}`);
    }
    let body = "";
    for await (const chunk of req) body += chunk;
    if (url.pathname === "/version") return sendJson(res, 200, { major: "1", minor: "31", gitVersion: "v1.31.0-troupe-fake" });
    const discovery = this.discovery(url.pathname);
    if (discovery) return sendJson(res, 200, discovery);

    const route = parseRoute(url.pathname);
    if (!route) throw new ApiError(404, "NotFound", `no route for ${url.pathname}`);
    const type = this.typeOf(route.group, route.plural);
    if (type.version !== route.version) throw new ApiError(404, "NotFound", `${route.group}/${route.version} is not served`);
    if (route.namespace !== undefined && !type.namespaced) throw new ApiError(404, "NotFound", `${type.plural} is not namespaced`);
    const namespace = type.namespaced ? route.namespace : undefined;
    const method = req.method ?? "GET";

    if (!route.name) {
      if (method === "GET" && url.searchParams.get("watch") === "true") return this.watch(type, namespace, url.searchParams, res);
      if (method === "GET") return sendJson(res, 200, this.listObjects(type, namespace, url.searchParams));
      if (method === "POST") {
        if (type.namespaced && namespace === undefined) throw new ApiError(405, "MethodNotAllowed", "create needs a namespace");
        return sendJson(res, 201, this.createInternal(type, namespace, parseBody(body, record.contentType)));
      }
      throw new ApiError(405, "MethodNotAllowed", `${method} on a collection is not supported`);
    }
    const key = objectKey(type.group, type.plural, namespace, route.name);
    if (route.subresource && route.subresource !== "status" && !(route.subresource === "scale" && type.scale)) {
      throw new ApiError(404, "NotFound", `${type.plural} has no subresource ${route.subresource}`);
    }
    if (route.subresource === "status" && !type.status) throw new ApiError(404, "NotFound", `${type.plural} has no status subresource`);
    switch (method) {
      case "GET": {
        const current = this.require(key, type, route.name);
        return sendJson(res, 200, route.subresource === "scale" ? toScale(type, current) : current);
      }
      case "PUT":
        return sendJson(res, 200, this.write(type, key, route.subresource, () => parseBody(body, record.contentType), true));
      case "PATCH": {
        const patcher = patchFunction(type, body, record.contentType ?? "");
        return sendJson(res, 200, this.write(type, key, route.subresource, (current) => patcher(current), false));
      }
      case "DELETE":
        return sendJson(res, 200, this.deleteInternal(type, key, body ? (JSON.parse(body) as { propagationPolicy?: string }).propagationPolicy : url.searchParams.get("propagationPolicy") ?? undefined));
      default:
        throw new ApiError(405, "MethodNotAllowed", method);
    }
  }

  private require(key: string, type: ResourceType, name: string): Obj {
    const current = this.store.get(key);
    if (!current) throw new ApiError(404, "NotFound", `${type.plural}${type.group ? "." + type.group : ""} "${name}" not found`);
    return current;
  }

  private listObjects(type: ResourceType, namespace: string | undefined, params: URLSearchParams): Obj {
    const matches = this.matcher(type, namespace, params);
    const all = [...this.store.values()].filter((o) => sameType(o, type) && matches(o)).sort((a, b) => objectKey("", "", a.metadata.namespace, a.metadata.name).localeCompare(objectKey("", "", b.metadata.namespace, b.metadata.name)));
    const limit = Number(params.get("limit") ?? 0);
    const offset = Number(params.get("continue") ?? 0);
    const items = limit > 0 ? all.slice(offset, offset + limit) : all.slice(offset);
    const more = limit > 0 && offset + limit < all.length;
    return {
      apiVersion: apiVersionOf(type),
      kind: `${type.kind}List`,
      metadata: { name: "", resourceVersion: String(this.rv), ...(more ? { continue: String(offset + limit) } : {}) },
      items,
    };
  }

  private matcher(type: ResourceType, namespace: string | undefined, params: URLSearchParams): (o: Obj) => boolean {
    let labels: ReturnType<typeof parseLabelSelector>;
    let fields: ReturnType<typeof parseFieldSelector>;
    try {
      labels = parseLabelSelector(params.get("labelSelector"));
      fields = parseFieldSelector(params.get("fieldSelector"));
    } catch (err) {
      throw new ApiError(400, "BadRequest", (err as Error).message);
    }
    return (o) => sameType(o, type) && (namespace === undefined || o.metadata.namespace === namespace) && labels(o.metadata.labels) && fields(o);
  }

  private watch(type: ResourceType, namespace: string | undefined, params: URLSearchParams, res: http.ServerResponse): void {
    const matches = this.matcher(type, namespace, params);
    const from = params.get("resourceVersion");
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    res.flushHeaders();
    const send = (type: string, object: unknown) => res.write(JSON.stringify({ type, object }) + "\n");
    if (from && from !== "0" && Number(from) < this.compactedRv) {
      send("ERROR", statusBody(new ApiError(410, "Expired", `too old resource version: ${from} (${this.compactedRv})`)));
      res.end();
      return;
    }
    const deliver = (event: WatchEvent) => {
      const now = matches(event.object);
      const before = event.old ? matches(event.old) : false;
      if (event.type === "MODIFIED" && before && !now) send("DELETED", event.object);
      else if (event.type === "MODIFIED" && !before && now) send("ADDED", event.object);
      else if (now) send(event.type, event.object);
    };
    if (!from || from === "0") {
      for (const o of this.store.values()) if (matches(o)) send("ADDED", o);
    } else {
      for (const event of this.history) if (event.rv > Number(from) && event.typeKey === typeKey(type.group, type.plural)) deliver(event);
    }
    const listener = (event: WatchEvent) => {
      if (event.typeKey === typeKey(type.group, type.plural)) deliver(event);
    };
    this.watchers.add(listener);
    this.openWatches.add(res);
    const timers: NodeJS.Timeout[] = [];
    if (params.get("allowWatchBookmarks") === "true") {
      timers.push(setInterval(() => send("BOOKMARK", { apiVersion: apiVersionOf(type), kind: type.kind, metadata: { resourceVersion: String(this.rv) } }), this.options.bookmarkIntervalMs ?? 60_000));
    }
    const timeout = Number(params.get("timeoutSeconds") ?? 0);
    if (timeout > 0) timers.push(setTimeout(() => res.end(), timeout * 1000));
    res.on("close", () => {
      this.watchers.delete(listener);
      this.openWatches.delete(res);
      for (const t of timers) clearTimeout(t);
    });
  }

  private emit(event: Omit<WatchEvent, "rv">): void {
    const full = { ...event, rv: Number(event.object.metadata.resourceVersion) };
    this.history.push(full);
    const limit = this.options.historyLimit ?? 10_000;
    if (this.history.length > limit) {
      const dropped = this.history.splice(0, this.history.length - limit);
      this.compactedRv = dropped[dropped.length - 1]!.rv;
    }
    for (const w of this.watchers) w(full);
  }

  private createInternal(type: ResourceType, namespace: string | undefined, input: Record<string, unknown>): Obj {
    const obj = structuredClone(input) as Obj;
    obj.metadata = { ...(obj.metadata ?? {}) } as Meta;
    if (!obj.metadata.name && obj.metadata.generateName) obj.metadata.name = generatedName(obj.metadata.generateName);
    if (!obj.metadata.name) throw invalidError(type, "", [{ reason: "FieldValueRequired", field: "metadata.name", message: "Required value: name or generateName is required" }]);
    const metaCauses = checkMetadata(obj.metadata, nameRuleOf(type.plural, type.group));
    if (metaCauses.length) throw invalidError(type, obj.metadata.name, metaCauses);
    if (obj.metadata.namespace !== undefined && namespace !== undefined && obj.metadata.namespace !== namespace) {
      throw new ApiError(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request");
    }
    if (namespace !== undefined && !this.store.has(objectKey("", "namespaces", undefined, namespace))) throw new ApiError(404, "NotFound", `namespaces "${namespace}" not found`);
    const key = objectKey(type.group, type.plural, namespace, obj.metadata.name);
    if (this.store.has(key)) throw new ApiError(409, "AlreadyExists", `${type.plural}${type.group ? "." + type.group : ""} "${obj.metadata.name}" already exists`);
    if (type.status && type.custom) delete obj.status;
    obj.apiVersion = apiVersionOf(type);
    obj.kind = type.kind;
    this.validate(type, obj);
    Object.assign(obj.metadata, {
      namespace,
      uid: randomUUID(),
      creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      resourceVersion: String(++this.rv),
      generation: 1,
    });
    if (namespace === undefined) delete obj.metadata.namespace;
    delete obj.metadata.deletionTimestamp;
    this.store.set(key, obj);
    if (type.plural === "customresourcedefinitions") this.serveCrd(obj);
    this.emit({ type: "ADDED", typeKey: typeKey(type.group, type.plural), object: obj });
    return obj;
  }

  /** PUT (`fromBody` ignores the current object) or PATCH of an object or one of its subresources. */
  private write(type: ResourceType, key: string, subresource: string | undefined, produce: (current: Obj) => Record<string, unknown>, isPut: boolean): Obj {
    const current = this.require(key, type, key.split("/").pop()!);
    const view = subresource === "scale" ? toScale(type, current) : structuredClone(current);
    const input = produce(structuredClone(view)) as Obj;
    const requestedRv = input.metadata?.resourceVersion;
    // Custom resources (like most kinds whose strategy forbids unconditional updates) need the resourceVersion on PUT.
    if (isPut && type.custom && !subresource && (requestedRv === undefined || requestedRv === "")) {
      throw invalidError(type, current.metadata.name, [{ reason: "FieldValueInvalid", field: "metadata.resourceVersion", message: "Invalid value: 0x0: must be specified for an update" }]);
    }
    if (requestedRv !== undefined && requestedRv !== "" && requestedRv !== current.metadata.resourceVersion) {
      throw new ApiError(409, "Conflict", `Operation cannot be fulfilled on ${type.plural}${type.group ? "." + type.group : ""} "${current.metadata.name}": the object has been modified; please apply your changes to the latest version and try again`);
    }
    if (isPut && (!input.metadata || input.metadata.name !== current.metadata.name)) throw new ApiError(400, "BadRequest", "the name of the object does not match the name on the URL");
    let next: Obj;
    if (subresource === "status") next = { ...structuredClone(current), status: input.status };
    else if (subresource === "scale") {
      next = structuredClone(current);
      setPath(next, type.scale!.specReplicasPath, (input as { spec?: { replicas?: number } }).spec?.replicas);
    } else {
      next = structuredClone(input);
      if (type.status) next.status = structuredClone(current.status);
      if (next.status === undefined) delete next.status;
      // Only some metadata is the client's to change.
      const { labels, annotations, finalizers, ownerReferences } = input.metadata ?? ({} as Meta);
      next.metadata = { ...current.metadata, labels, annotations, finalizers, ownerReferences } as Meta;
      for (const k of ["labels", "annotations", "finalizers", "ownerReferences"] as const) if (next.metadata[k] === undefined) delete next.metadata[k];
    }
    next.apiVersion = current.apiVersion;
    next.kind = current.kind;
    const metaCauses = [...checkLabels(next.metadata.labels), ...checkAnnotations(next.metadata.annotations)];
    if (metaCauses.length) throw invalidError(type, current.metadata.name, metaCauses);
    this.validate(type, next);
    if (isDeepStrictEqual(withoutVolatile(next), withoutVolatile(current))) return subresource === "scale" ? toScale(type, current) : current;
    if (!isDeepStrictEqual(specOf(next), specOf(current))) next.metadata.generation = (current.metadata.generation ?? 1) + 1;
    next.metadata.resourceVersion = String(++this.rv);
    if (next.metadata.deletionTimestamp && !(next.metadata.finalizers?.length)) {
      this.store.delete(key);
      this.emit({ type: "DELETED", typeKey: typeKey(type.group, type.plural), object: next, old: current });
      this.collectGarbage(next.metadata.uid!, "Background");
      return next;
    }
    this.store.set(key, next);
    if (type.plural === "customresourcedefinitions") this.serveCrd(next);
    this.emit({ type: "MODIFIED", typeKey: typeKey(type.group, type.plural), object: next, old: current });
    return subresource === "scale" ? toScale(type, next) : next;
  }

  private deleteInternal(type: ResourceType, key: string, propagationPolicy: string | undefined): Obj {
    const current = this.require(key, type, key.split("/").pop()!);
    if (current.metadata.finalizers?.length) {
      if (current.metadata.deletionTimestamp) return current;
      const next = structuredClone(current);
      next.metadata.deletionTimestamp = new Date().toISOString();
      next.metadata.resourceVersion = String(++this.rv);
      this.store.set(key, next);
      this.emit({ type: "MODIFIED", typeKey: typeKey(type.group, type.plural), object: next, old: current });
      return next;
    }
    this.store.delete(key);
    const gone = structuredClone(current);
    gone.metadata.resourceVersion = String(++this.rv);
    this.emit({ type: "DELETED", typeKey: typeKey(type.group, type.plural), object: gone });
    if (type.plural === "namespaces") this.deleteNamespaceContents(current.metadata.name);
    this.collectGarbage(current.metadata.uid!, propagationPolicy ?? "Background");
    return gone;
  }

  /** The garbage collector: dependents of a deleted owner are deleted (or orphaned), asynchronously like the real one. */
  private collectGarbage(ownerUid: string, policy: string): void {
    setImmediate(() => {
      for (const [key, obj] of [...this.store.entries()]) {
        const refs = obj.metadata.ownerReferences ?? [];
        if (!refs.some((r) => r.uid === ownerUid)) continue;
        const type = this.types.get(key.split("/").slice(0, 2).join("/"));
        if (!type) continue;
        if (policy === "Orphan" || refs.some((r) => r.uid !== ownerUid && this.uidExists(r.uid))) {
          this.write(type, key, undefined, (o) => ({ ...o, metadata: { ...o.metadata, ownerReferences: refs.filter((r) => r.uid !== ownerUid) } }), false);
        } else if (this.store.has(key)) this.deleteInternal(type, key, policy);
      }
    });
  }

  private uidExists(uid: string): boolean {
    for (const o of this.store.values()) if (o.metadata.uid === uid) return true;
    return false;
  }

  private deleteNamespaceContents(namespace: string): void {
    setImmediate(() => {
      for (const [key, obj] of [...this.store.entries()]) {
        if (obj.metadata.namespace !== namespace) continue;
        const type = this.types.get(key.split("/").slice(0, 2).join("/"));
        if (type && this.store.has(key)) this.deleteInternal(type, key, "Background");
      }
    });
  }

  private validate(type: ResourceType, obj: Obj): void {
    if (!type.validator) return;
    const causes = type.validator.check(obj);
    if (causes.length) throw invalidError(type, obj.metadata.name, causes.map((text) => ({ reason: "FieldValueInvalid", field: text.split(":")[0]!, message: text.slice(text.indexOf(":") + 2) })));
  }

  private serveCrd(crd: Obj): void {
    const spec = crd.spec as {
      group: string;
      scope: string;
      names: { plural: string; kind: string };
      versions: { name: string; served: boolean; storage: boolean; schema?: { openAPIV3Schema: SchemaNode }; subresources?: { status?: object; scale?: ResourceType["scale"] } }[];
    };
    const version = spec.versions.find((v) => v.storage) ?? spec.versions[0]!;
    this.types.set(typeKey(spec.group, spec.names.plural), {
      group: spec.group,
      version: version.name,
      plural: spec.names.plural,
      kind: spec.names.kind,
      namespaced: spec.scope === "Namespaced",
      status: Boolean(version.subresources?.status),
      scale: version.subresources?.scale,
      validator: version.schema ? new CrdValidator(version.schema.openAPIV3Schema) : undefined,
      custom: true,
    });
  }

  private discovery(path: string): unknown {
    const types = [...this.types.values()];
    if (path === "/api") return { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [] };
    if (path === "/apis") {
      const groups = [...new Set(types.filter((t) => t.group).map((t) => `${t.group}/${t.version}`))].map((gv) => {
        const [name, version] = gv.split("/") as [string, string];
        return { name, versions: [{ groupVersion: gv, version }], preferredVersion: { groupVersion: gv, version } };
      });
      return { kind: "APIGroupList", apiVersion: "v1", groups };
    }
    const m = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))\/?$/.exec(path);
    if (!m) return undefined;
    const group = m[1] ? "" : m[2]!;
    const version = m[1] ?? m[3]!;
    const served = types.filter((t) => t.group === group && t.version === version);
    if (!served.length) return undefined;
    const verbs = ["create", "delete", "get", "list", "patch", "update", "watch"];
    const resources = served.flatMap((t) => [
      { name: t.plural, singularName: t.kind.toLowerCase(), namespaced: t.namespaced, kind: t.kind, verbs },
      ...(t.status ? [{ name: `${t.plural}/status`, singularName: "", namespaced: t.namespaced, kind: t.kind, verbs: ["get", "patch", "update"] }] : []),
      ...(t.scale ? [{ name: `${t.plural}/scale`, singularName: "", namespaced: t.namespaced, kind: "Scale", group: "autoscaling", version: "v1", verbs: ["get", "patch", "update"] }] : []),
    ]);
    return { kind: "APIResourceList", apiVersion: "v1", groupVersion: group ? `${group}/${version}` : version, resources };
  }
}

/** generateName plus five characters of apimachinery's alphabet (no vowels, no look-alikes), the base cut to fit 63. */
function generatedName(base: string): string {
  const alphabet = "bcdfghjklmnpqrstvwxz2456789";
  const suffix = [...randomBytes(5)].map((b) => alphabet[b % alphabet.length]).join("");
  return base.slice(0, 58) + suffix;
}

function typeKey(group: string, plural: string): string {
  return `${group || "core"}/${plural}`;
}

function objectKey(group: string, plural: string, namespace: string | undefined, name: string): string {
  return `${typeKey(group, plural)}/${namespace ?? ""}/${name}`;
}

function apiVersionOf(type: ResourceType): string {
  return type.group ? `${type.group}/${type.version}` : type.version;
}

function sameType(o: Obj, type: ResourceType): boolean {
  return o.kind === type.kind && o.apiVersion === apiVersionOf(type);
}

function parseRoute(path: string): { group: string; version: string; namespace?: string; plural: string; name?: string; subresource?: string } | undefined {
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  let group: string;
  let version: string;
  let rest: string[];
  if (parts[0] === "api") [group, version, rest] = ["", parts[1]!, parts.slice(2)];
  else if (parts[0] === "apis") [group, version, rest] = [parts[1]!, parts[2]!, parts.slice(3)];
  else return undefined;
  if (!version || rest.length === 0) return undefined;
  if (rest[0] === "namespaces" && rest.length >= 3) return { group, version, namespace: rest[1], plural: rest[2]!, name: rest[3], subresource: rest[4] };
  return { group, version, plural: rest[0]!, name: rest[1], subresource: rest[2] };
}

function parseBody(body: string, contentType: string | undefined): Record<string, unknown> {
  try {
    const value = contentType?.includes("yaml") ? parseYaml(body) : JSON.parse(body);
    if (!value || typeof value !== "object" || Array.isArray(value)) throw new Error("body is not an object");
    return value as Record<string, unknown>;
  } catch (err) {
    throw new ApiError(400, "BadRequest", `malformed request body: ${(err as Error).message}`);
  }
}

/** RFC 7386 JSON merge patch. */
function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== "object" || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target && typeof target === "object" && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

function patchFunction(type: ResourceType, body: string, contentType: string): (current: Obj) => Record<string, unknown> {
  if (contentType.startsWith("application/json-patch+json")) {
    let ops: jsonpatch.Operation[];
    try {
      ops = JSON.parse(body) as jsonpatch.Operation[];
    } catch (err) {
      throw new ApiError(400, "BadRequest", `malformed JSON patch: ${(err as Error).message}`);
    }
    return (current) => {
      try {
        return jsonpatch.applyPatch(current, ops, true, true).newDocument as Record<string, unknown>;
      } catch (err) {
        throw new ApiError(422, "Invalid", `the JSON patch could not be applied: ${(err as Error).message}`);
      }
    };
  }
  // Strategic merge exists for built-in kinds only; approximated here by a merge patch (lists are replaced).
  const strategic = contentType.startsWith("application/strategic-merge-patch+json");
  if (strategic && type.custom) throw new ApiError(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml`);
  if (contentType.startsWith("application/merge-patch+json") || contentType.startsWith("application/apply-patch+yaml") || strategic) {
    const patch = parseBody(body, contentType);
    return (current) => mergePatch(current, patch) as Record<string, unknown>;
  }
  throw new ApiError(415, "UnsupportedMediaType", `unsupported patch type ${contentType}`);
}

function toScale(type: ResourceType, obj: Obj): Obj {
  const scale = type.scale!;
  const selectorValue = scale.labelSelectorPath
    ? getPath(obj, scale.labelSelectorPath)
    : selectorString((obj as { spec?: { selector?: { matchLabels?: Record<string, string> } } }).spec?.selector?.matchLabels);
  return {
    apiVersion: "autoscaling/v1",
    kind: "Scale",
    metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace, uid: obj.metadata.uid, resourceVersion: obj.metadata.resourceVersion, creationTimestamp: obj.metadata.creationTimestamp },
    spec: { replicas: (getPath(obj, scale.specReplicasPath) as number | undefined) ?? 0 },
    status: { replicas: (getPath(obj, scale.statusReplicasPath) as number | undefined) ?? 0, ...(selectorValue ? { selector: selectorValue } : {}) },
  };
}

function selectorString(labels: Record<string, string> | undefined): string | undefined {
  return labels ? Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(",") : undefined;
}

function getPath(obj: unknown, path: string): unknown {
  return path.split(".").filter(Boolean).reduce<unknown>((o, k) => (o && typeof o === "object" ? (o as Record<string, unknown>)[k] : undefined), obj);
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".").filter(Boolean);
  let node = obj;
  for (const k of keys.slice(0, -1)) {
    if (!node[k] || typeof node[k] !== "object") node[k] = {};
    node = node[k] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}

/** Everything except metadata and status: what bumps `generation`. */
function specOf(obj: Obj): unknown {
  const { metadata: _m, status: _s, ...rest } = obj;
  return rest;
}

function withoutVolatile(obj: Obj): unknown {
  const { resourceVersion: _rv, ...metadata } = obj.metadata;
  return { ...obj, metadata };
}

function statusBody(err: ApiError): Record<string, unknown> {
  return {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: err.message,
    reason: err.reason,
    code: err.code,
    ...(err.causes.length || err.details.name !== undefined ? { details: { ...err.details, ...(err.causes.length ? { causes: err.causes } : {}) } } : {}),
  };
}

function sendStatus(res: http.ServerResponse, err: ApiError): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  sendJson(res, err.code, statusBody(err));
}

function sendJson(res: http.ServerResponse, code: number, body: unknown): void {
  res.writeHead(code, { "content-type": "application/json" });
  res.end(JSON.stringify(body));
}

function loadYamlDocuments(path: string): Record<string, unknown>[] {
  const files = path.endsWith(".yaml") || path.endsWith(".yml") ? [path] : readdirSync(path).filter((f) => /\.ya?ml$/.test(f)).map((f) => join(path, f));
  return files.flatMap((file) => {
    const text = readFileSync(file, "utf8");
    return text.split(/^---\s*$/m).map((doc) => parseYaml(doc) as Record<string, unknown> | null).filter((d): d is Record<string, unknown> => d !== null);
  });
}
