import type * as k8s from "@kubernetes/client-node";
import type { KubeObject, ResourceRef } from "./api.js";

type Informer = k8s.Informer<KubeObject> & k8s.ObjectCache<KubeObject>;

interface Written {
  object: KubeObject;
  /** The cached resourceVersion when the write came back: while the cache still shows it, the cache is behind. */
  before: string | undefined;
  at: number;
}

/**
 * The informers' caches, read as controller-runtime's cached client reads them, plus read-your-writes: after the
 * operator writes an object, reads return what the write returned until the informer has moved past the version it
 * showed at the time (its watch delivers our write, or a later one). Without that, the poll after a scale would
 * decide from the size before it. A write the informer never reflects (the object deleted meanwhile) is forgotten
 * after `writtenMs`.
 */
export class ObjectCaches {
  private readonly informers: { ref: ResourceRef; namespace: string | undefined; informer: Informer }[] = [];
  private readonly written = new Map<string, Written>();

  constructor(
    private readonly now: () => number,
    private readonly writtenMs = 30_000,
  ) {}

  add(ref: ResourceRef, namespace: string | undefined, informer: Informer): void {
    this.informers.push({ ref, namespace, informer });
  }

  /** The informers of one resource (and namespace, when given). */
  of(ref: ResourceRef, namespace?: string): Informer[] {
    return this.informers.filter((i) => sameRef(i.ref, ref) && (namespace === undefined || i.namespace === undefined || i.namespace === namespace)).map((i) => i.informer);
  }

  get all(): readonly { ref: ResourceRef; namespace: string | undefined; informer: Informer }[] {
    return this.informers;
  }

  get<T extends KubeObject>(ref: ResourceRef, namespace: string, name: string): T | undefined {
    const cached = this.of(ref, namespace)
      .map((i) => i.get(name, namespace))
      .find((o) => o !== undefined);
    const key = keyOf(ref, namespace, name);
    const written = this.written.get(key);
    if (written) {
      if (cached?.metadata.resourceVersion === written.before && written.at > this.now() - this.writtenMs) return written.object as T;
      this.written.delete(key);
    }
    return cached as T | undefined;
  }

  list<T extends KubeObject>(ref: ResourceRef, namespace: string): T[] {
    return this.of(ref, namespace).flatMap((i) => i.list(namespace) as T[]);
  }

  /** Note an object a write returned (objects of resources without an informer are ignored). */
  wrote(ref: ResourceRef, object: KubeObject): void {
    const { namespace, name } = object.metadata;
    if (namespace === undefined || this.of(ref, namespace).length === 0) return;
    const cached = this.of(ref, namespace)
      .map((i) => i.get(name, namespace))
      .find((o) => o !== undefined);
    if (cached?.metadata.resourceVersion === object.metadata.resourceVersion) return;
    this.written.set(keyOf(ref, namespace, name), { object, before: cached?.metadata.resourceVersion, at: this.now() });
  }

  clear(): void {
    this.informers.length = 0;
    this.written.clear();
  }
}

function sameRef(a: ResourceRef, b: ResourceRef): boolean {
  return a.group === b.group && a.plural === b.plural;
}

function keyOf(ref: ResourceRef, namespace: string, name: string): string {
  return `${ref.group}/${ref.plural}/${namespace}/${name}`;
}
