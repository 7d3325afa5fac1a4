import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync, readdirSync } from "node:fs";
import http from "node:http";
import { join } from "node:path";
import { isDeepStrictEqual } from "node:util";
import * as k8s from "@kubernetes/client-node";
import jsonpatch from "fast-json-patch";
import { parse as parseYaml } from "yaml";
import { type Cause, causeText, checkLabels, checkAnnotations, checkMetadata, nameRuleOf } from "./names.js";
import { validateBuiltin } from "./builtins.js";
import { checkCrd } from "./crd-checks.js";
import { ADMIN, ANONYMOUS, authorize, authorizePath, bootstrapClusterRoles, type RbacObject, type RequestAttributes, serviceAccountUser, type UserInfo } from "./rbac.js";
import { CrdValidator, type SchemaNode } from "../../operator/api/crd-validator.js";
import { parseFieldSelector, parseLabelSelector } from "./selectors.js";

/**
 * An in-process stand-in for kube-apiserver on 127.0.0.1, for running the real @kubernetes/client-node against.
 * Real semantics where the operator depends on them: resourceVersion and 409 conflicts, list + watch (headers
 * flushed at once, replay from a resourceVersion, bookmarks, 410 Gone after compaction, label and field
 * selectors, `timeoutSeconds`), paged lists read from a snapshot with 410 Expired continue tokens, status and scale
 * subresources, generation bumped only by spec changes, no-op writes that keep the resourceVersion, finalizers,
 * owner-reference garbage collection, JSON / merge patches, namespaces that must exist, CRDs checked at create
 * (structural schema, CEL rules that compile) and served at once, custom resources validated by their schema
 * (pruning, defaults, RFC 3339 date-time, CEL and transition rules). Names per kind, labels, annotations, the
 * resourceVersion precondition and Deployment/Service specs are checked as kube-apiserver does; bearer tokens are
 * authenticated and requests authorised by the stored RBAC objects (rbac.ts), with owner-reference admission.
 *
 * Not modelled (docs/testing.md keeps the list): RBAC escalation checks, Pod/ConfigMap/Secret field validation,
 * CEL cost budgets, oldSelf inside lists, managed fields and server-side apply (apply patches are merge patches),
 * strategic merge (approximated by a merge patch: lists are replaced), admission webhooks, quotas, API priority and
 * fairness. No controllers run: Deployments get no pods and no status unless a test writes them.
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
  { group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterroles", kind: "ClusterRole", namespaced: false, status: false },
  { group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterrolebindings", kind: "ClusterRoleBinding", namespaced: false, status: false },
  { group: "rbac.authorization.k8s.io", version: "v1", plural: "roles", kind: "Role", namespaced: true, status: false },
  { group: "rbac.authorization.k8s.io", version: "v1", plural: "rolebindings", kind: "RoleBinding", namespaced: true, status: false },
];

/** The token of `kubeConfig()`'s default user, a cluster admin (system:masters), as a kubeadm admin.conf is. */
const ADMIN_TOKEN = "test-token";

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
  /** The bearer token it carried: which client sent it. */
  token?: string;
  /** When it arrived (Date.now()). */
  at: number;
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
  /** Bearer tokens: a user, or a ServiceAccount that must still exist when the token is presented. */
  private readonly tokens = new Map<string, UserInfo | { serviceAccount: [namespace: string, name: string] }>([[ADMIN_TOKEN, ADMIN]]);
  private hangs: ((req: RecordedRequest) => boolean)[] = [];
  private readonly held = new Set<http.ServerResponse>();
  readonly requests: RecordedRequest[] = [];
  port = 0;

  constructor(private readonly options: FakeApiServerOptions = {}) {
    for (const t of BUILTINS) this.types.set(typeKey(t.group, t.plural), { ...t, custom: false });
    for (const ns of ["default", "kube-system"]) this.createInternal(this.typeOf("", "namespaces"), undefined, { metadata: { name: ns } });
    for (const role of bootstrapClusterRoles()) this.createInternal(this.typeOf("rbac.authorization.k8s.io", "clusterroles"), undefined, role as unknown as Record<string, unknown>);
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

  /** A KubeConfig pointing at this server, as a user's kubeconfig would: a cluster admin's unless `token` is given. */
  kubeConfig(namespace = "default", token = ADMIN_TOKEN): k8s.KubeConfig {
    const kc = new k8s.KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "fake", server: this.url, skipTLSVerify: true }],
      users: [{ name: "tester", token }],
      contexts: [{ name: "fake", cluster: "fake", user: "tester", namespace }],
      currentContext: "fake",
    });
    return kc;
  }

  /**
   * A token for a ServiceAccount, as the kubelet mounts one in a pod: requests with it act as
   * system:serviceaccount:<namespace>:<name>, and are 401 once the ServiceAccount is gone.
   */
  serviceAccountToken(namespace: string, name: string): string {
    const token = `sa-${randomBytes(12).toString("hex")}`;
    this.tokens.set(token, { serviceAccount: [namespace, name] });
    return token;
  }

  /** A token for a plain user (as an OIDC or certificate login would give), in `groups` and system:authenticated. */
  userToken(name: string, groups: string[] = []): string {
    const token = `user-${randomBytes(12).toString("hex")}`;
    this.tokens.set(token, { name, groups: [...groups, "system:authenticated"] });
    return token;
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

  /**
   * Leave matching requests unanswered and unprocessed, as a client cut off from the server sees it, until the
   * returned function is called; their connections are then closed. They are still recorded in `requests`.
   */
  hang(match: (req: RecordedRequest) => boolean): () => void {
    this.hangs.push(match);
    return () => {
      this.hangs = this.hangs.filter((h) => h !== match);
      for (const res of this.held) res.destroy();
      this.held.clear();
    };
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
    const record: RecordedRequest = { method: req.method ?? "GET", path: url.pathname + url.search, contentType: req.headers["content-type"], token: /^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1], at: Date.now() };
    this.requests.push(record);
    if (this.hangs.some((h) => h(record))) {
      this.held.add(res);
      return;
    }
    for (const fault of this.faults) {
      const code = fault(record);
      if (code) throw new ApiError(code, code === 503 ? "ServiceUnavailable" : "InternalError", `injected fault ${code}`);
    }
    let body = "";
    for await (const chunk of req) body += chunk;
    const user = this.authenticate(req.headers.authorization);
    const method = req.method ?? "GET";
    const route = parseRoute(url.pathname);
    if (!route) {
      const denied = authorizePath(this.rbacStore, user, url.pathname);
      if (denied) throw new ApiError(403, "Forbidden", `forbidden: ${denied}`);
    }
    if (url.pathname === "/version") return sendJson(res, 200, { major: "1", minor: "31", gitVersion: "v1.31.0-troupe-fake" });
    const discovery = this.discovery(url.pathname);
    if (discovery) return sendJson(res, 200, discovery);

    if (!route) throw new ApiError(404, "NotFound", `no route for ${url.pathname}`);
    const watching = method === "GET" && url.searchParams.get("watch") === "true";
    const attrs: RequestAttributes = {
      verb: watching ? "watch" : verbOf(method, route.name !== undefined),
      group: route.group,
      resource: route.plural,
      subresource: route.subresource,
      namespace: route.namespace,
      name: route.name,
    };
    this.authorizeOrThrow(user, attrs);
    const type = this.typeOf(route.group, route.plural);
    if (type.version !== route.version) throw new ApiError(404, "NotFound", `${route.group}/${route.version} is not served`);
    if (route.namespace !== undefined && !type.namespaced) throw new ApiError(404, "NotFound", `${type.plural} is not namespaced`);
    const namespace = type.namespaced ? route.namespace : undefined;
    const admit = (next: Obj, old?: Obj) => this.admitOwnerReferences(user, type, namespace, next, old);

    if (!route.name) {
      if (method === "GET" && url.searchParams.get("watch") === "true") return this.watch(type, namespace, url.searchParams, res);
      if (method === "GET") return sendJson(res, 200, this.listObjects(type, namespace, url.searchParams));
      if (method === "POST") {
        if (type.namespaced && namespace === undefined) throw new ApiError(405, "MethodNotAllowed", "create needs a namespace");
        return sendJson(res, 201, this.createInternal(type, namespace, parseBody(body, record.contentType), admit));
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
        return sendJson(res, 200, this.write(type, key, route.subresource, () => parseBody(body, record.contentType), true, admit));
      case "PATCH": {
        const patcher = patchFunction(type, body, record.contentType ?? "");
        return sendJson(res, 200, this.write(type, key, route.subresource, (current) => patcher(current), false, admit));
      }
      case "DELETE":
        return sendJson(res, 200, this.deleteInternal(type, key, body ? (JSON.parse(body) as { propagationPolicy?: string }).propagationPolicy : url.searchParams.get("propagationPolicy") ?? undefined));
      default:
        throw new ApiError(405, "MethodNotAllowed", method);
    }
  }

  /** The user a bearer token stands for; no token is system:anonymous, an unknown one (or a deleted ServiceAccount's) 401. */
  private authenticate(header: string | undefined): UserInfo {
    if (!header) return ANONYMOUS;
    const entry = /^Bearer (.+)$/i.exec(header) ? this.tokens.get(header.slice(7).trim()) : undefined;
    if (entry && "serviceAccount" in entry) {
      const [namespace, name] = entry.serviceAccount;
      if (this.store.has(objectKey("", "serviceaccounts", namespace, name))) return serviceAccountUser(namespace, name);
    } else if (entry) return entry;
    throw new ApiError(401, "Unauthorized", "Unauthorized");
  }

  private authorizeOrThrow(user: UserInfo, attrs: RequestAttributes): void {
    const denied = authorize(this.rbacStore, user, attrs);
    if (denied) throw forbidden(attrs, denied);
  }

  /**
   * The OwnerReferencesPermissionEnforcement admission plugin: setting blockOwnerDeletion on a reference needs
   * `update` on the owner's `finalizers` subresource.
   */
  private admitOwnerReferences(user: UserInfo, type: ResourceType, namespace: string | undefined, next: Obj, old: Obj | undefined): void {
    const before = old?.metadata.ownerReferences ?? [];
    for (const ref of (next.metadata.ownerReferences ?? []) as { apiVersion?: string; kind: string; name: string; uid: string; blockOwnerDeletion?: boolean }[]) {
      if (!ref.blockOwnerDeletion || before.some((b) => b.uid === ref.uid && (b as { blockOwnerDeletion?: boolean }).blockOwnerDeletion)) continue;
      const owner = [...this.types.values()].find((t) => t.kind === ref.kind && apiVersionOf(t) === ref.apiVersion);
      if (!owner) continue;
      const attrs = { verb: "update", group: owner.group, resource: owner.plural, subresource: "finalizers", namespace: owner.namespaced ? namespace : undefined, name: ref.name };
      const denied = authorize(this.rbacStore, user, attrs);
      if (denied) {
        const what = type.group ? `${type.plural}.${type.group}` : type.plural;
        throw new ApiError(403, "Forbidden", `${what} "${next.metadata.name}" is forbidden: cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on: ${denied}, <nil>`, [], { name: next.metadata.name, group: type.group, kind: type.plural });
      }
    }
  }

  /** The stored RBAC objects, read by the authorizer at each request. */
  private readonly rbacStore = {
    clusterRoles: () => this.rbacObjects("clusterroles"),
    clusterRoleBindings: () => this.rbacObjects("clusterrolebindings"),
    roles: (namespace: string) => this.rbacObjects("roles", namespace),
    roleBindings: (namespace: string) => this.rbacObjects("rolebindings", namespace),
  };

  private rbacObjects(plural: string, namespace?: string): RbacObject[] {
    const prefix = `${typeKey("rbac.authorization.k8s.io", plural)}/${namespace ?? ""}/`;
    return [...this.store.entries()].filter(([k]) => k.startsWith(prefix)).map(([, o]) => o as unknown as RbacObject);
  }

  private require(key: string, type: ResourceType, name: string): Obj {
    const current = this.store.get(key);
    if (!current) throw new ApiError(404, "NotFound", `${type.plural}${type.group ? "." + type.group : ""} "${name}" not found`);
    return current;
  }

  /**
   * A list, paged as etcd3 pages it: the `continue` token carries the list's resourceVersion and the last key
   * returned, every page is read from the snapshot at that resourceVersion (objects deleted or added after the first
   * page neither vanish from nor appear in later pages), and a token older than the compaction is 410 Expired.
   */
  private listObjects(type: ResourceType, namespace: string | undefined, params: URLSearchParams): Obj {
    const matches = this.matcher(type, namespace, params);
    const token = params.get("continue");
    const { rv, start } = token ? decodeContinue(token) : { rv: this.rv, start: "" };
    if (rv < this.compactedRv) {
      throw new ApiError(410, "Expired", "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.");
    }
    const snapshot = rv === this.rv ? this.store : this.storeAt(rv);
    const all = [...snapshot.entries()]
      .filter(([key, o]) => key > start && matches(o))
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const limit = Number(params.get("limit") ?? 0);
    const page = limit > 0 ? all.slice(0, limit) : all;
    const rest = all.length - page.length;
    return {
      apiVersion: apiVersionOf(type),
      kind: `${type.kind}List`,
      metadata: { name: "", resourceVersion: String(rv), ...(rest > 0 ? { continue: encodeContinue(rv, page[page.length - 1]![0]), remainingItemCount: rest } : {}) },
      items: page.map(([, o]) => o),
    };
  }

  /** The store as it was at resourceVersion `rv`, by undoing the retained history newer than it. */
  private storeAt(rv: number): Map<string, Obj> {
    const state = new Map(this.store);
    for (let i = this.history.length - 1; i >= 0 && this.history[i]!.rv > rv; i--) {
      const event = this.history[i]!;
      const key = `${event.typeKey}/${event.object.metadata.namespace ?? ""}/${event.object.metadata.name}`;
      if (event.type === "ADDED") state.delete(key);
      else state.set(key, event.old!);
    }
    return state;
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

  private createInternal(type: ResourceType, namespace: string | undefined, input: Record<string, unknown>, admit?: (next: Obj) => void): Obj {
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
    const builtinCauses = validateBuiltin(type.group, type.plural, obj);
    if (builtinCauses.length) throw invalidError(type, obj.metadata.name, builtinCauses);
    admit?.(obj);
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
  private write(type: ResourceType, key: string, subresource: string | undefined, produce: (current: Obj) => Record<string, unknown>, isPut: boolean, admit?: (next: Obj, old: Obj) => void): Obj {
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
    this.validate(type, next, current);
    const builtinCauses = subresource === "status" ? [] : validateBuiltin(type.group, type.plural, next, current);
    if (builtinCauses.length) throw invalidError(type, current.metadata.name, builtinCauses);
    admit?.(next, current);
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
    this.emit({ type: "DELETED", typeKey: typeKey(type.group, type.plural), object: gone, old: current });
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

  private validate(type: ResourceType, obj: Obj, old?: Obj): void {
    if (type.plural === "customresourcedefinitions" && type.group === "apiextensions.k8s.io") {
      const causes = checkCrd(obj);
      if (causes.length) throw invalidError(type, obj.metadata.name, causes);
    }
    if (!type.validator) return;
    const causes = type.validator.check(obj, old);
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

/** The RBAC verb of a resource request (watch is told apart by the caller). */
function verbOf(method: string, named: boolean): string {
  switch (method) {
    case "GET": return named ? "get" : "list";
    case "POST": return "create";
    case "PUT": return "update";
    case "PATCH": return "patch";
    case "DELETE": return named ? "delete" : "deletecollection";
    default: return method.toLowerCase();
  }
}

/** 403 as the API server words it: `deployments.apps "x" is forbidden: User "…" cannot …`. */
function forbidden(attrs: RequestAttributes, reason: string): ApiError {
  const what = attrs.group ? `${attrs.resource}.${attrs.group}` : attrs.resource;
  return new ApiError(403, "Forbidden", `${what}${attrs.name ? ` ${JSON.stringify(attrs.name)}` : ""} is forbidden: ${reason}`, [], { ...(attrs.name ? { name: attrs.name } : {}), group: attrs.group, kind: attrs.resource });
}

function encodeContinue(rv: number, lastKey: string): string {
  return Buffer.from(JSON.stringify({ v: "meta.k8s.io/v1", rv, start: `${lastKey}\u0000` })).toString("base64url");
}

function decodeContinue(token: string): { rv: number; start: string } {
  try {
    const { v, rv, start } = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { v?: string; rv?: unknown; start?: unknown };
    if (v !== "meta.k8s.io/v1" || typeof rv !== "number" || typeof start !== "string") throw new Error("unexpected contents");
    return { rv, start };
  } catch (err) {
    throw new ApiError(400, "BadRequest", `continue key is not valid: ${(err as Error).message}`);
  }
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
    ...(err.causes.length || Object.keys(err.details).length ? { details: { ...err.details, ...(err.causes.length ? { causes: err.causes } : {}) } } : {}),
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
