import cluster from "node:cluster";
import { writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { isMainThread } from "node:worker_threads";
if (isMainThread && cluster.isWorker) {
  const start = Number(process.env.HS_START ?? 2500), stop = Number(process.env.HS_STOP ?? 5000);
  const s = new Session(); s.connect();
  setTimeout(() => {
    s.post("HeapProfiler.enable");
    s.post("HeapProfiler.startSampling", { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: process.env.HS_MINOR === "1" });
  }, start).unref();
  setTimeout(() => {
    s.post("HeapProfiler.stopSampling", (err, r) => { writeFileSync(`/tmp/heapsamp-${process.pid}.json`, JSON.stringify(r.profile)); });
  }, stop).unref();
}
