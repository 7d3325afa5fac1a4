import { EventEmitter } from "node:events";
import { getLogger } from "../../worker/logging.js";
import { errorCode, LEASES, type KubeApi, type KubeObject } from "../kube/api.js";

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  identity: string;
  /** How long a lease is valid without renewal (client-go default 15 s). */
  leaseDurationMs?: number;
  /** A leader that cannot renew within this gives up leadership (client-go default 10 s). */
  renewDeadlineMs?: number;
  /** Pause between acquire / renew attempts (client-go default 2 s). */
  retryPeriodMs?: number;
  /** The clock (default: the system's). */
  now?: () => Date;
}

interface Lease extends KubeObject {
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; acquireTime?: string; renewTime?: string; leaseTransitions?: number };
}

const log = getLogger("operator.leader");

/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go's leaderelection does it: a candidate takes the
 * lease when its holder has not renewed it for a lease duration (measured on this candidate's own clock from when
 * it last saw the record change, so clock skew between nodes does not matter); every write is a compare-and-swap on
 * resourceVersion, so two candidates can never both win. Emits `started` on winning and `stopped` when leadership is
 * lost; `release()` hands the lease back on graceful shutdown so a successor need not wait out the duration.
 *
 * A leader that has not renewed within the renew deadline stops at that moment, by a timer, not when a hung request
 * finally fails; and every lease request is cut off at the time left before the deadline. The deadline is shorter
 * than the lease duration, so the old leader has stopped before any other candidate may take the lease. Once lost,
 * leadership is not campaigned for again by this elector (the process restarts, as with client-go).
 */
export class LeaderElector extends EventEmitter {
  private readonly leaseDurationMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryPeriodMs: number;
  private observedRecord = "";
  private observedAt = 0;
  private leading = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private lastRenew = 0;
  /** The acquire-or-renew under way, which release waits for: its write would otherwise race the release's. */
  private inFlight: Promise<void> | undefined;
  private readonly now: () => number;

  constructor(
    private readonly api: KubeApi,
    private readonly options: LeaderElectionOptions,
  ) {
    super();
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
    const clock = options.now ?? (() => new Date());
    this.now = () => clock().getTime();
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    this.inFlight = this.tick();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => (this.inFlight = this.tick()), this.retryPeriodMs);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      const held = await this.tryAcquireOrRenew();
      if (this.stopped) return;
      if (held) this.renewed();
      if (held && !this.leading) {
        this.leading = true;
        log.info("became leader", { lease: this.options.name, identity: this.options.identity });
        this.emit("started");
      } else if (!held && this.leading) this.lose("another candidate holds the lease");
    } catch (err) {
      log.warn("lease update failed", { lease: this.options.name, err });
    }
    this.schedule();
  }

  /** A renewal succeeded: the leader may act until the renew deadline from now. */
  private renewed(): void {
    this.lastRenew = this.now();
    clearTimeout(this.deadline);
    this.deadline = setTimeout(() => {
      if (this.leading) this.lose("could not renew the lease within the renew deadline");
    }, this.renewDeadlineMs);
    this.deadline.unref();
  }

  /** How long the next lease request may take: never past the leader's renew deadline. */
  private requestTimeoutMs(): number {
    const left = this.leading ? this.lastRenew + this.renewDeadlineMs - this.now() : this.renewDeadlineMs;
    return Math.max(1, Math.min(this.api.timeoutMs, left));
  }

  private lose(why: string): void {
    this.leading = false;
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.deadline);
    log.warn("lost leadership", { lease: this.options.name, identity: this.options.identity, why });
    this.emit("stopped");
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.options;
    const now = new Date(this.now());
    const timeoutMs = this.requestTimeoutMs();
    const lease = await this.api.get<Lease>(LEASES, namespace, name, timeoutMs);
    const spec = {
      holderIdentity: identity,
      leaseDurationSeconds: Math.ceil(this.leaseDurationMs / 1000),
      renewTime: microTime(now),
    };
    if (!lease) {
      try {
        await this.api.create<Lease>(LEASES, namespace, {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name, namespace },
          spec: { ...spec, acquireTime: microTime(now), leaseTransitions: 0 },
        }, this.requestTimeoutMs());
        return true;
      } catch (err) {
        if (errorCode(err) === 409) return false;
        throw err;
      }
    }
    const record = JSON.stringify(lease.spec ?? {});
    if (record !== this.observedRecord) {
      this.observedRecord = record;
      this.observedAt = this.now();
    }
    const holder = lease.spec?.holderIdentity ?? "";
    const duration = (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
    const iHold = holder === identity;
    if (!iHold && holder !== "" && this.observedAt + duration > this.now()) return false;
    try {
      await this.api.patch<Lease>(LEASES, namespace, name, {
        metadata: { resourceVersion: lease.metadata.resourceVersion },
        spec: iHold
          ? spec
          : { ...spec, acquireTime: microTime(now), leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + 1 },
      }, this.requestTimeoutMs());
      return true;
    } catch (err) {
      if (errorCode(err) === 409) return false;
      throw err;
    }
  }

  /**
   * Stop campaigning and give the lease up so another candidate can take it at once. It is given up whenever the
   * lease still names this candidate, also after a lost renew deadline; the resourceVersion precondition keeps it
   * from touching a lease someone else has taken since.
   */
  async release(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.deadline);
    const wasLeading = this.leading;
    this.leading = false;
    await this.inFlight;
    if (!wasLeading && this.lastRenew === 0) return;
    for (let attempt = 1; ; attempt++) {
      try {
        const lease = await this.api.get<Lease>(LEASES, this.options.namespace, this.options.name);
        if (lease?.spec?.holderIdentity !== this.options.identity) return;
        await this.api.patch(LEASES, this.options.namespace, this.options.name, {
          metadata: { resourceVersion: lease.metadata.resourceVersion },
          spec: { holderIdentity: null, leaseDurationSeconds: 1, renewTime: microTime(new Date(this.now())) },
        });
        return;
      } catch (err) {
        if (errorCode(err) === 409 && attempt < 3) continue;
        log.warn("could not release the lease", { lease: this.options.name, err });
        return;
      }
    }
  }

  /** Stop without releasing (a crash, in tests). */
  abandon(): void {
    this.stopped = true;
    this.leading = false;
    clearTimeout(this.timer);
    clearTimeout(this.deadline);
  }
}

/** metav1.MicroTime: RFC 3339 with microseconds. */
function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}
