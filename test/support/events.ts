import { BroadcastChannel } from "node:worker_threads";

/**
 * Actors in test fixtures report what they did on a BroadcastChannel, which reaches the test's main thread from
 * every worker thread of the process. The test subscribes with `collect` and awaits the events it needs.
 */
export const CHANNEL = "troupe-test-events";

export interface TestEvent {
  kind: string;
  [key: string]: unknown;
}

export function report(event: TestEvent): void {
  const channel = new BroadcastChannel(CHANNEL);
  channel.postMessage(event);
  channel.close();
}

export class EventLog {
  readonly events: TestEvent[] = [];
  private readonly channel = new BroadcastChannel(CHANNEL);
  private waiters: { match: (e: TestEvent[]) => boolean; resolve: () => void }[] = [];

  constructor() {
    this.channel.onmessage = (msg) => {
      this.events.push((msg as { data: TestEvent }).data);
      this.waiters = this.waiters.filter((w) => {
        if (!w.match(this.events)) return true;
        w.resolve();
        return false;
      });
    };
  }

  of(kind: string): TestEvent[] {
    return this.events.filter((e) => e.kind === kind);
  }

  /** Resolve once `match` holds for the events seen so far; reject after `timeout` ms naming `what`. */
  waitFor(match: (events: TestEvent[]) => boolean, what: string, timeout = 20_000): Promise<void> {
    if (match(this.events)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; saw ${JSON.stringify(this.events.slice(-5))}`)), timeout);
      this.waiters.push({ match, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  count(kind: string, n: number, timeout?: number): Promise<void> {
    return this.waitFor((events) => events.filter((e) => e.kind === kind).length >= n, `${n} "${kind}" events`, timeout);
  }

  close(): void {
    this.channel.close();
  }
}
