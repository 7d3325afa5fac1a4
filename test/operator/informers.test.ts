import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { KubeApi, WORKERPOOLS } from "../../operator/kube/api.js";
import { informerBackoffMs, RestartingInformer } from "../../operator/runtime/informers.js";
import { startFakeApiServer } from "../support/operator.js";
import { until } from "../support/wait.js";

describe("informer restarts", () => {
  test("the backoff doubles from 0.8 s to a 30 s cap, with up to as much again of jitter", () => {
    assert.deepEqual([0, 1, 2, 3, 5, 6, 10].map((n) => informerBackoffMs(n, 0)), [800, 1600, 3200, 6400, 25_600, 30_000, 30_000]);
    assert.equal(informerBackoffMs(0, 0.999), 1599);
    assert.equal(informerBackoffMs(10, 0.5), 45_000);
  });

  test("an informer whose list fails is restarted with growing waits, and lists once the server answers", async () => {
    const fake = await startFakeApiServer();
    try {
      const lists = () => fake.requests.filter((r) => r.method === "GET" && r.path.startsWith("/apis/troupe.dev/v1alpha1/workerpools") && !r.path.includes("watch=true"));
      const clear = fake.injectFault((r) => (r.method === "GET" && r.path.startsWith("/apis/troupe.dev/v1alpha1/workerpools") ? 500 : undefined));
      const api = new KubeApi(fake.kubeConfig());
      // No jitter, so the waits are exact: 800, 1600 ms.
      const informer = new RestartingInformer(api.informer(WORKERPOOLS, undefined), "workerpools", Date.now, () => 0);
      const started = informer.start();
      await until(() => lists().length >= 3, "three failed lists", { timeout: 10_000 });
      clear();
      await started;
      const at = lists().map((r) => r.at);
      const gaps = at.slice(1, 3).map((t, i) => t - at[i]!);
      assert.ok(gaps[0]! >= 800 && gaps[1]! >= 1600, `waits ${gaps.join(", ")} ms`);
      await informer.stop();
    } finally {
      await fake.stop();
    }
  });
});
