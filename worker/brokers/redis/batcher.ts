/**
 * Collects items added during one turn of the event loop and hands them to `flush` in one call, so that the
 * acks of many messages finishing together cost one script call. Each `add` resolves when its batch is done.
 */
export class Batcher<T> {
  private items: T[] = [];
  private waiters: { resolve: () => void; reject: (err: unknown) => void }[] = [];
  private scheduled = false;

  constructor(private readonly flush: (items: T[]) => Promise<void>) {}

  add(item: T): Promise<void> {
    this.items.push(item);
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.run());
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private run(): void {
    const items = this.items;
    const waiters = this.waiters;
    this.items = [];
    this.waiters = [];
    this.scheduled = false;
    this.flush(items).then(
      () => waiters.forEach((w) => w.resolve()),
      (err) => waiters.forEach((w) => w.reject(err)),
    );
  }
}
