/**
 * Collects items added during one turn of the event loop and hands them to `flush` in one call, so that the
 * acks of many messages finishing together cost one script call. Items added in the same turn share one promise,
 * settled when their batch is done.
 */
export class Batcher<T> {
  private items: T[] = [];
  private batch: Promise<void> | undefined;

  constructor(private readonly flush: (items: T[]) => Promise<void>) {}

  add(item: T): Promise<void> {
    this.items.push(item);
    this.batch ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.run());
    return this.batch;
  }

  private run(): Promise<void> {
    const items = this.items;
    this.items = [];
    this.batch = undefined;
    return this.flush(items);
  }
}
