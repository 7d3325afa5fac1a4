/**
 * Wait for a condition by re-checking it, with a deadline; the failure message says what never happened.
 * Used where the thing awaited has no event to subscribe to (a row in another process, a broker count).
 */
export async function until<T>(probe: () => T | Promise<T>, what: string, { timeout = 20_000, interval = 10 } = {}): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeout;
  let last: T | undefined;
  for (;;) {
    last = await probe();
    if (last) return last as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}
