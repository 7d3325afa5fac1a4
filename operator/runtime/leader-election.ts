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
  private lastRenew = 0;

  constructor(
    private readonly api: KubeApi,
    private readonly options: LeaderElectionOptions,
  ) {
    super();
    this.leaseDurationMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryPeriodMs = options.retryPeriodMs ?? 2_000;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    void this.tick();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => void this.tick(), this.retryPeriodMs);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      const held = await this.tryAcquireOrRenew();
      if (held) this.lastRenew = Date.now();
      if (held && !this.leading) {
        this.leading = true;
        log.info("became leader", { lease: this.options.name, identity: this.options.identity });
        this.emit("started");
      } else if (!held && this.leading) this.lose("another candidate holds the lease");
    } catch (err) {
      log.warn("lease update failed", { lease: this.options.name, err });
      if (this.leading && Date.now() - this.lastRenew > this.renewDeadlineMs) this.lose("could not renew the lease within the renew deadline");
    }
    this.schedule();
  }

  private lose(why: string): void {
    this.leading = false;
    log.warn("lost leadership", { lease: this.options.name, identity: this.options.identity, why });
    this.emit("stopped");
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { namespace, name, identity } = this.options;
    const now = new Date();
    const lease = await this.api.get<Lease>(LEASES, namespace, name);
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
        });
        return true;
      } catch (err) {
        if (errorCode(err) === 409) return false;
        throw err;
      }
    }
    const record = JSON.stringify(lease.spec ?? {});
    if (record !== this.observedRecord) {
      this.observedRecord = record;
      this.observedAt = Date.now();
    }
    const holder = lease.spec?.holderIdentity ?? "";
    const duration = (lease.spec?.leaseDurationSeconds ?? 0) * 1000;
    const iHold = holder === identity;
    if (!iHold && holder !== "" && this.observedAt + duration > Date.now()) return false;
    try {
      await this.api.patch<Lease>(LEASES, namespace, name, {
        metadata: { resourceVersion: lease.metadata.resourceVersion },
        spec: iHold
          ? spec
          : { ...spec, acquireTime: microTime(now), leaseTransitions: (lease.spec?.leaseTransitions ?? 0) + 1 },
      });
      return true;
    } catch (err) {
      if (errorCode(err) === 409) return false;
      throw err;
    }
  }

  /** Stop campaigning; a leader gives the lease up so another candidate can take it at once. */
  async release(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (!this.leading) return;
    this.leading = false;
    try {
      const lease = await this.api.get<Lease>(LEASES, this.options.namespace, this.options.name);
      if (lease?.spec?.holderIdentity === this.options.identity) {
        await this.api.patch(LEASES, this.options.namespace, this.options.name, {
          metadata: { resourceVersion: lease.metadata.resourceVersion },
          spec: { holderIdentity: null, leaseDurationSeconds: 1, renewTime: microTime(new Date()) },
        });
      }
    } catch (err) {
      log.warn("could not release the lease", { lease: this.options.name, err });
    }
  }

  /** Stop without releasing (a crash, in tests). */
  abandon(): void {
    this.stopped = true;
    this.leading = false;
    clearTimeout(this.timer);
  }
}

/** metav1.MicroTime: RFC 3339 with microseconds. */
function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}
