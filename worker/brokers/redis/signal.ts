/**
 * A level-triggered wake-up for one waiting loop: `fire` wakes the current waiter, or the next `wait` if
 * nobody is waiting yet, so a wake-up that races ahead of the wait is not lost.
 */
export class Signal {
  private fired = false;
  private waiter: (() => void) | undefined;

  fire(): void {
    this.fired = true;
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }

  /** Forget wake-ups so far (call before looking at the state the signal announces). */
  reset(): void {
    this.fired = false;
  }

  /** Resolve on a wake-up or after `ms` (Infinity = no timeout). */
  async wait(ms: number): Promise<void> {
    if (!this.fired) {
      await new Promise<void>((resolve) => {
        const timer = Number.isFinite(ms) ? setTimeout(() => this.waiter === wake && (this.waiter = undefined, resolve()), ms) : undefined;
        const wake = () => {
          clearTimeout(timer);
          resolve();
        };
        this.waiter = wake;
      });
    }
    this.fired = false;
  }
}
