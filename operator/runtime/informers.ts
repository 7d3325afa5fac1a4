import type * as k8s from "@kubernetes/client-node";
import { getLogger } from "../../worker/logging.js";
import type { KubeObject } from "../kube/api.js";

const log = getLogger("operator.informers");

/** client-go's reflector backoff: 800 ms doubling to 30 s, up to twice that with jitter, reset after 2 quiet minutes. */
export const INFORMER_BACKOFF = { initialMs: 800, maxMs: 30_000, jitter: 1, resetMs: 120_000 };

/** The wait before restart number `failures + 1` of a failed informer, for a random draw in [0, 1). */
export function informerBackoffMs(failures: number, random: number, backoff = INFORMER_BACKOFF): number {
  return Math.round(Math.min(backoff.initialMs * 2 ** failures, backoff.maxMs) * (1 + backoff.jitter * random));
}

/**
 * An informer that is restarted after its list or watch fails, with exponential backoff and jitter (so a fleet of
 * operators does not hammer a recovering API server in step). `started` resolves once it has listed.
 */
export class RestartingInformer {
  private failures = 0;
  private lastFailure = -Infinity;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private resolveListed!: () => void;
  readonly listed = new Promise<void>((resolve) => (this.resolveListed = resolve));

  constructor(
    readonly informer: k8s.Informer<KubeObject> & k8s.ObjectCache<KubeObject>,
    private readonly what: string,
    private readonly now: () => number,
    private readonly random: () => number = Math.random,
  ) {
    informer.on("error", (err: unknown) => this.failed(err));
  }

  /** Start listing and watching; resolves once the first list is in the cache. */
  async start(): Promise<void> {
    this.running = true;
    await this.run();
    await this.listed;
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    await this.informer.stop();
  }

  private async run(): Promise<void> {
    if (!this.running) return;
    await this.informer.start();
    if ((this.informer as unknown as k8s.ListWatch<k8s.KubernetesObject>).latestResourceVersion()) this.resolveListed();
  }

  private failed(err: unknown): void {
    if (!this.running) return;
    const now = this.now();
    if (now - this.lastFailure > INFORMER_BACKOFF.resetMs) this.failures = 0;
    this.lastFailure = now;
    const delay = informerBackoffMs(this.failures++, this.random());
    log.warn("list or watch failed; restarting the informer", { informer: this.what, retryInMs: delay, err });
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.run().catch((startErr: unknown) => this.failed(startErr)), delay);
    this.timer.unref();
  }
}
