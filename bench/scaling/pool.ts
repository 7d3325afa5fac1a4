import type { DelayedSend } from "./traces.js";

/** What every simulated pool shares, whichever scaler sizes it. */
export interface PoolModel {
  /** Seconds from a pod's creation to it consuming (image pull, start, broker connection). */
  startupSeconds: number;
  /** Messages one pod runs at once (processes × threads). */
  concurrency: number;
  /** Seconds one message takes: a pod drains concurrency / serviceSeconds messages per second. */
  serviceSeconds: number;
  maxReplicas: number;
}

/**
 * Which pods a scale-down removes first, after the ones still starting. `least-busy`: the operator's
 * pod-deletion-cost (in-flight messages); `newest`: the ReplicaSet's own ranking when no cost is set.
 */
export type Removal = "least-busy" | "newest";

interface Pod {
  createdAt: number;
  readyAt: number;
  /** Seconds left of each message it runs. */
  running: number[];
  /** Its `dramatiq_messages_total`: gone with the pod. */
  processed: number;
  terminating: boolean;
}

/** What the operator can read of the pool at one instant (the broker's queues and the pods' metrics). */
export interface PoolView {
  /** Messages sent ready, or delayed and promoted, that no pod runs yet. */
  ready: number;
  /** Messages pods are running, terminating pods included (their ack sets are still live). */
  inFlight: number;
  /** Delayed messages with an eta at or before `by`, promoted or not. */
  delayedDueBy(by: number): number;
  /** Pods not being deleted (the Deployment's pods), and of those, the ones consuming. */
  pods: number;
  readyPods: number;
  /** Pods with at least one message in flight, among those not being deleted. */
  busyPods: number;
  /**
   * What the pods that answer on their metrics port report: the consuming ones (a starting pod does not answer yet,
   * and the operator does not scrape a pod being deleted). Their processed counters and in-progress gauges summed.
   */
  processed: number;
  running: number;
}

/**
 * A pool on a 1 s clock. Each second: messages sent arrive; delayed messages whose eta has come are promoted, if a
 * pod is consuming, since in Dramatiq a running worker is what moves them to the queue; pods finish messages and
 * take new ones, spread over the pods with free slots; then the scaler may resize. A new pod consumes after the
 * start-up delay; a removed pod takes no more messages, finishes the ones it runs, and is gone.
 */
export class SimulatedPool {
  private readonly pods: Pod[] = [];
  private ready = 0;
  /** Delayed messages not yet promoted, by eta. */
  private readonly waiting = new Map<number, number>();
  private next = 0;
  sent = 0;
  completed = 0;

  constructor(
    private readonly model: PoolModel,
    private readonly removal: Removal,
  ) {}

  /** One second of the pool's life. */
  step(t: number, arrived: number, delayed: readonly DelayedSend[]): void {
    this.ready += arrived;
    this.sent += arrived;
    for (const d of delayed) {
      this.waiting.set(d.eta, (this.waiting.get(d.eta) ?? 0) + d.count);
      this.sent += d.count;
    }
    const consuming = this.pods.filter((p) => p.readyAt <= t);
    if (consuming.some((p) => !p.terminating)) {
      for (const [eta, count] of this.waiting) {
        if (eta > t) continue;
        this.ready += count;
        this.waiting.delete(eta);
      }
    }
    for (const pod of consuming) {
      const left = pod.running.map((s) => s - 1);
      const done = left.filter((s) => s <= 0).length;
      pod.running = left.filter((s) => s > 0);
      pod.processed += done;
      this.completed += done;
    }
    this.dispatch(consuming.filter((p) => !p.terminating));
    for (let i = this.pods.length - 1; i >= 0; i--) if (this.pods[i]!.terminating && this.pods[i]!.running.length === 0) this.pods.splice(i, 1);
  }

  /** One message at a time to each pod with a free slot, round after round, from a start that moves each second. */
  private dispatch(pods: Pod[]): void {
    if (pods.length === 0) return;
    this.next = (this.next + 1) % pods.length;
    let given = true;
    while (this.ready > 0 && given) {
      given = false;
      for (let k = 0; k < pods.length && this.ready > 0; k++) {
        const pod = pods[(this.next + k) % pods.length]!;
        if (pod.running.length >= this.model.concurrency) continue;
        pod.running.push(this.model.serviceSeconds);
        this.ready--;
        given = true;
      }
    }
  }

  /** The Deployment's replicas set to `replicas` at second t (bounded to the model's maximum). */
  resize(t: number, replicas: number): void {
    const target = Math.max(0, Math.min(replicas, this.model.maxReplicas));
    const live = this.pods.filter((p) => !p.terminating);
    for (let n = live.length; n < target; n++) this.pods.push({ createdAt: t, readyAt: t + this.model.startupSeconds, running: [], processed: 0, terminating: false });
    if (live.length <= target) return;
    // Starting pods go first (the ReplicaSet removes pods that are not ready before ready ones), newest first.
    const order = [...live].sort((a, b) => Number(a.readyAt <= t) - Number(b.readyAt <= t) || (this.removal === "least-busy" ? a.running.length - b.running.length : 0) || b.createdAt - a.createdAt);
    for (const pod of order.slice(0, live.length - target)) pod.terminating = true;
    for (let i = this.pods.length - 1; i >= 0; i--) if (this.pods[i]!.terminating && this.pods[i]!.running.length === 0) this.pods.splice(i, 1);
  }

  view(t: number): PoolView {
    const live = this.pods.filter((p) => !p.terminating);
    const answering = live.filter((p) => p.readyAt <= t);
    const waiting = this.waiting;
    const ready = this.ready;
    return {
      ready,
      inFlight: this.pods.reduce((n, p) => n + p.running.length, 0),
      delayedDueBy: (by) => [...waiting].reduce((n, [eta, count]) => (eta <= by ? n + count : n), 0),
      pods: live.length,
      readyPods: answering.length,
      busyPods: live.filter((p) => p.running.length > 0).length,
      processed: answering.reduce((n, p) => n + p.processed, 0),
      running: answering.reduce((n, p) => n + p.running.length, 0),
    };
  }

  /** Pods that exist and cost: starting, consuming and terminating. */
  get replicas(): number {
    return this.pods.length;
  }

  /** Messages waiting for a pod: ready, and delayed ones past their eta not yet promoted. */
  waitingAt(t: number): number {
    return this.ready + [...this.waiting].reduce((n, [eta, count]) => (eta <= t ? n + count : n), 0);
  }

  /** Every message sent and not completed: ready, in flight and delayed. */
  get unfinished(): number {
    return this.ready + this.pods.reduce((n, p) => n + p.running.length, 0) + [...this.waiting.values()].reduce((n, c) => n + c, 0);
  }
}
