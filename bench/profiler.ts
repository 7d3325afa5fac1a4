import { writeFileSync } from "node:fs";
import { Session, type Profiler } from "node:inspector";
import { join } from "node:path";
import { isMainThread, threadId } from "node:worker_threads";

/**
 * A CPU profile of this thread, as `node --cpu-prof` writes it. `--cpu-prof` writes only at a normal exit,
 * which the bench's worker processes may not reach (it kills trees that outlive their stop), so the bench
 * actors start one in each thread when BENCH_CPU_PROF names a directory and save it when the worker stops.
 * Saving is synchronous (an in-thread inspector session answers at once), so a thread about to be terminated
 * still gets its profile written.
 */
export class CpuProfile {
  private readonly session = new Session();

  constructor() {
    this.session.connect();
    this.session.post("Profiler.enable");
    this.session.post("Profiler.start");
  }

  /** Stop profiling and write `<dir>/worker-<pid>[-thread-<id>].cpuprofile` (open it in Chrome DevTools or speedscope). */
  save(dir: string): string {
    let profile: Profiler.Profile | undefined;
    this.session.post("Profiler.stop", (err, result) => {
      if (err) throw err;
      profile = result.profile;
    });
    this.session.disconnect();
    const file = join(dir, `worker-${process.pid}${isMainThread ? "" : `-thread-${threadId}`}.cpuprofile`);
    writeFileSync(file, JSON.stringify(profile));
    return file;
  }
}
