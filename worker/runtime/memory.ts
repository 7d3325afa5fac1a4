import v8 from "node:v8";

/** Matches no object: queryObjects is called for the collection it runs first, not for what it finds. */
class Nothing {}

/**
 * Give back what booting left behind: module loading grows V8's young generation and leaves garbage whose native
 * side (malloc) is only freed once V8 collects it. V8's memory reducer does the same on its own, but only after
 * ~15 s of idleness; doing it at boot means what is freed can be reused by the next thread that boots (see
 * ThreadPool.start) instead of each thread growing the malloc arenas anew. Returns whether it ran.
 *
 * Node has no public call for a memory-reducing GC. `v8.queryObjects` (Node >= 20.13) runs one
 * (CollectAllAvailableGarbage: full collections until nothing more is freed, and the young generation shrunk back
 * to its initial size) before it counts; it costs a few ms on a boot-sized heap. It announces itself with an
 * ExperimentalWarning on stderr, which the caller has no use for, hence the muted `emitWarning` around it.
 * (`--expose-gc`'s `gc()` is no substitute: it neither shrinks the young generation nor can be had in a worker
 * thread without a process-wide V8 flag.)
 */
export function releaseMemory(): boolean {
  if (typeof v8.queryObjects !== "function") return false;
  const emitWarning = process.emitWarning;
  process.emitWarning = () => undefined;
  try {
    v8.queryObjects(Nothing);
    return true;
  } catch {
    return false;
  } finally {
    process.emitWarning = emitWarning;
  }
}
