import { getLogger } from "../../worker/logging.js";
import { EVENTS, type KubeApi, type KubeObject } from "../kube/api.js";

export type EventType = "Normal" | "Warning";

const log = getLogger("operator.events");

/**
 * Kubernetes Events (events.k8s.io/v1) about the operator's objects. Recording never fails a reconcile: an event that
 * cannot be written is logged and dropped. Repeats of the same event on the same object within `dedupeMs` are not
 * written again, so a level-triggered loop that sees the same error every poll does not flood the namespace.
 */
export class EventRecorder {
  private readonly recent = new Map<string, number>();

  constructor(
    private readonly api: KubeApi,
    private readonly controller = "troupe.dev/operator",
    private readonly instance = "troupe-operator",
    private readonly dedupeMs = 60_000,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async record(regarding: KubeObject, type: EventType, reason: string, action: string, note: string): Promise<void> {
    const namespace = regarding.metadata.namespace ?? "default";
    const key = `${regarding.metadata.uid}/${type}/${reason}/${note}`;
    const now = this.now().getTime();
    if ((this.recent.get(key) ?? 0) > now - this.dedupeMs) return;
    this.recent.set(key, now);
    for (const [k, at] of this.recent) if (at <= now - this.dedupeMs) this.recent.delete(k);
    try {
      await this.api.create(EVENTS, namespace, {
        apiVersion: "events.k8s.io/v1",
        kind: "Event",
        metadata: { name: "", generateName: `${regarding.metadata.name}.`, namespace },
        eventTime: new Date(now).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z"),
        reportingController: this.controller,
        reportingInstance: this.instance,
        action,
        reason,
        type,
        note: note.slice(0, 1024),
        regarding: { apiVersion: regarding.apiVersion, kind: regarding.kind, name: regarding.metadata.name, namespace, uid: regarding.metadata.uid },
      });
    } catch (err) {
      log.warn("could not record an event", { reason, object: `${namespace}/${regarding.metadata.name}`, err });
    }
  }
}
