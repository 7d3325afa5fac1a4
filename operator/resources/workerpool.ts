import { createHash } from "node:crypto";
import { API_VERSION, type WorkerPool } from "../api/types.js";
import type { KubeObject } from "../kube/api.js";
import { covers, mergeKeys } from "../kube/create-or-update.js";
import { metricsServiceName } from "./names.js";
import { ACTORS_CONFIGMAP, ACTORS_FILE, ACTORS_MOUNT, MANAGED_BY, METRICS_PORT, poolSelectorLabels } from "./labels.js";

export const TEMPLATE_HASH = "troupe.dev/template-hash";
/** The pod label and annotation keys the pool's spec set at the last write, so that removing one removes it. */
export const POD_METADATA_KEYS = "troupe.dev/pod-metadata-keys";

/**
 * Every pod spec field the pool's template may set: the operator owns them, so one the pool no longer sets is
 * removed from the Deployment (`serviceAccount` is the deprecated alias the API server keeps beside
 * `serviceAccountName`). Other fields of the live template (defaults, what others add) are left as they are.
 */
export const OWNED_POD_FIELDS = [
  "terminationGracePeriodSeconds", "serviceAccountName", "serviceAccount", "automountServiceAccountToken", "securityContext", "containers", "volumes",
  "imagePullSecrets", "nodeSelector", "tolerations", "affinity", "priorityClassName",
] as const;

function ownerReference(pool: WorkerPool) {
  return [{ apiVersion: API_VERSION, kind: "WorkerPool", name: pool.metadata.name, uid: pool.metadata.uid!, controller: true, blockOwnerDeletion: true }];
}

function commonLabels(pool: WorkerPool): Record<string, string> {
  return { "app.kubernetes.io/name": "troupe-worker", "app.kubernetes.io/instance": pool.metadata.name, "app.kubernetes.io/component": "worker", ...MANAGED_BY, ...poolSelectorLabels(pool.metadata.name) };
}

/** The `troupe worker` arguments of a pool's pods. */
export function workerArgs(pool: WorkerPool, queues: readonly string[]): string[] {
  const s = pool.spec;
  const args = ["worker", ...s.modules, "--processes", String(s.processes ?? 1), "--threads", String(s.threads ?? 8), "--concurrency", String(s.concurrency ?? 1)];
  if (queues.length) args.push("--queues", queues.join(","));
  if (s.prefetch !== undefined) args.push("--prefetch", String(s.prefetch));
  args.push("--shutdown-timeout", String(s.shutdownTimeoutSeconds ?? 30));
  return args;
}

/** Broker settings of a pool that its workers read from the environment, for pods and for `troupe up` alike. */
export function brokerSettingsEnv(pool: WorkerPool): Record<string, string> {
  return pool.spec.queueType ? { TROUPE_RABBITMQ_QUEUE_TYPE: pool.spec.queueType } : {};
}

/**
 * The Deployment of a pool. The pod template carries a hash of itself so the reconciler can tell a changed template
 * from an unchanged one without comparing defaulted fields the API server added.
 */
export function poolDeployment(pool: WorkerPool, queues: readonly string[], replicas: number): KubeObject {
  const s = pool.spec;
  const labels = commonLabels(pool);
  const secretEnv = (name: string, ref: { name: string; key?: string }) => ({ name, valueFrom: { secretKeyRef: { name: ref.name, key: ref.key ?? "url" } } });
  const template = {
    metadata: { labels: { ...(s.podLabels ?? {}), ...labels }, annotations: { ...(s.podAnnotations ?? {}) } },
    spec: {
      // The worker gets the shutdown timeout to drain; the kubelet waits a little longer before SIGKILL.
      terminationGracePeriodSeconds: (s.shutdownTimeoutSeconds ?? 30) + 15,
      ...(s.serviceAccountName ? { serviceAccountName: s.serviceAccountName } : {}),
      automountServiceAccountToken: false,
      // The image's own numeric non-root user (the Troupe image's 1000), so files a derived image added stay readable.
      securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
      containers: [
        {
          name: "worker",
          image: s.image,
          ...(s.imagePullPolicy ? { imagePullPolicy: s.imagePullPolicy } : {}),
          args: workerArgs(pool, queues),
          env: [
            secretEnv("TROUPE_BROKER_URL", s.broker.secretRef),
            ...(s.results ? [secretEnv("TROUPE_RESULTS_URL", s.results.secretRef)] : []),
            ...Object.entries(brokerSettingsEnv(pool)).map(([name, value]) => ({ name, value })),
            { name: "TROUPE_METRICS_PORT", value: String(METRICS_PORT) },
            { name: "TROUPE_ACTOR_OVERRIDES", value: `${ACTORS_MOUNT}/${ACTORS_FILE}` },
            { name: "TROUPE_POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
            ...(s.env ?? []),
          ],
          ports: [{ name: "metrics", containerPort: METRICS_PORT, protocol: "TCP" }],
          ...(s.resources ? { resources: s.resources } : {}),
          securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ["ALL"] } },
          volumeMounts: [
            { name: "actors", mountPath: ACTORS_MOUNT, readOnly: true },
            { name: "tmp", mountPath: "/tmp" },
          ],
        },
      ],
      volumes: [
        { name: "actors", configMap: { name: ACTORS_CONFIGMAP, optional: true } },
        { name: "tmp", emptyDir: {} },
      ],
      ...(s.imagePullSecrets ? { imagePullSecrets: s.imagePullSecrets } : {}),
      ...(s.nodeSelector ? { nodeSelector: s.nodeSelector } : {}),
      ...(s.tolerations ? { tolerations: s.tolerations } : {}),
      ...(s.affinity ? { affinity: s.affinity } : {}),
      ...(s.priorityClassName ? { priorityClassName: s.priorityClassName } : {}),
    },
  };
  const hash = createHash("sha256").update(JSON.stringify(template)).digest("hex").slice(0, 16);
  return {
    apiVersion: "apps/v1",
    kind: "Deployment",
    metadata: {
      name: pool.metadata.name,
      namespace: pool.metadata.namespace,
      labels,
      annotations: { [TEMPLATE_HASH]: hash, [POD_METADATA_KEYS]: JSON.stringify({ labels: Object.keys(s.podLabels ?? {}).sort(), annotations: Object.keys(s.podAnnotations ?? {}).sort() }) },
      ownerReferences: ownerReference(pool),
    },
    spec: {
      replicas,
      selector: { matchLabels: poolSelectorLabels(pool.metadata.name) },
      // Never take a running worker away for a rollout before its replacement is up.
      strategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: "25%", maxUnavailable: 0 } },
      template,
    },
  };
}

/** A headless Service over the pool's metrics ports, for scraping and service discovery. */
export function poolMetricsService(pool: WorkerPool) {
  return {
    apiVersion: "v1",
    kind: "Service",
    metadata: { name: metricsServiceName(pool.metadata.name), namespace: pool.metadata.namespace, labels: commonLabels(pool), ownerReferences: ownerReference(pool) },
    spec: { clusterIP: "None", selector: poolSelectorLabels(pool.metadata.name), ports: [{ name: "metrics", port: METRICS_PORT, targetPort: "metrics", protocol: "TCP" }] },
  };
}

export function poolPodMonitor(pool: WorkerPool): KubeObject {
  return {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "PodMonitor",
    metadata: { name: pool.metadata.name, namespace: pool.metadata.namespace, labels: commonLabels(pool), ownerReferences: ownerReference(pool) },
    spec: { selector: { matchLabels: poolSelectorLabels(pool.metadata.name) }, podMetricsEndpoints: [{ port: "metrics", path: "/metrics" }] },
  };
}

interface PodTemplate {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
}
type Workload = KubeObject & { spec?: Record<string, unknown> & { replicas?: number; template?: PodTemplate }; status?: unknown };

/**
 * The Deployment to write over `live` so that it is what the pool wants, or undefined when it already is. Rewritten
 * when the wanted template changed (its hash: this also catches a field removed from the pool), the size or the
 * operator's labels differ, or, with `checkFields`, a field the operator set was edited by hand. The result keeps
 * what others added — template annotations such as `kubectl rollout restart`'s, defaulted fields, other labels —
 * and drops owned fields and pod label/annotation keys the pool no longer sets.
 */
export function deploymentUpdate(live: Workload, desired: Workload, { checkFields }: { checkFields: boolean }): KubeObject | undefined {
  const wanted = desired.spec!;
  const changed =
    live.metadata.annotations?.[TEMPLATE_HASH] !== desired.metadata.annotations?.[TEMPLATE_HASH] ||
    live.spec?.replicas !== wanted.replicas ||
    !covers(live.metadata, desired.metadata) ||
    (checkFields && !covers(live.spec, wanted));
  if (!changed) return undefined;
  const previous = JSON.parse(live.metadata.annotations?.[POD_METADATA_KEYS] ?? "{}") as { labels?: string[]; annotations?: string[] };
  const liveTemplate = live.spec?.template ?? {};
  const wantedTemplate = wanted.template!;
  const podSpec = Object.fromEntries(Object.entries(liveTemplate.spec ?? {}).filter(([k]) => !(OWNED_POD_FIELDS as readonly string[]).includes(k)));
  const { status: _status, ...rest } = live;
  return {
    ...rest,
    metadata: ownedMetadata(live, desired),
    spec: {
      ...live.spec,
      ...wanted,
      template: {
        ...liveTemplate,
        metadata: {
          ...liveTemplate.metadata,
          labels: mergeKeys(liveTemplate.metadata?.labels, wantedTemplate.metadata?.labels, previous.labels),
          annotations: mergeKeys(liveTemplate.metadata?.annotations, wantedTemplate.metadata?.annotations, previous.annotations),
        },
        spec: { ...podSpec, ...wantedTemplate.spec },
      },
    },
  };
}

/**
 * The Service, PodMonitor or ConfigMap to write over `live`, or undefined when it holds every field `desired` sets.
 * `spec` is merged field by field (the API server fills in clusterIPs and the like); other top-level fields
 * (`data`) are the operator's alone.
 */
export function ownedUpdate(live: KubeObject, desired: KubeObject): KubeObject | undefined {
  if (covers(live, desired)) return undefined;
  const { metadata: _m, apiVersion: _a, kind: _k, ...fields } = desired;
  const { status: _status, ...rest } = live;
  const merged = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, k === "spec" ? { ...(live.spec as object | undefined), ...(v as object) } : v]));
  return { ...rest, ...merged, metadata: ownedMetadata(live, desired) };
}

/** Live metadata with the operator's labels, annotations and owner references; others' labels and annotations stay. */
function ownedMetadata(live: KubeObject, desired: KubeObject): KubeObject["metadata"] {
  const { labels, annotations, ownerReferences } = desired.metadata;
  return { ...live.metadata, labels: mergeKeys(live.metadata.labels, labels), annotations: mergeKeys(live.metadata.annotations, annotations), ownerReferences };
}
