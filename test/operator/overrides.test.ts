import assert from "node:assert/strict";
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parseActorOverrides, watchActorOverrides, type ActorOverrides } from "../../worker/runtime/overrides.js";
import { until } from "../support/wait.js";

describe("actor overrides file (worker side of the Actor resource)", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "troupe-overrides-"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test("parses JSON and YAML, drops unknown options, rejects wrong types", () => {
    assert.deepEqual(parseActorOverrides('{"send_email": {"maxRetries": 3, "timeLimit": 1000}}'), { send_email: { maxRetries: 3, timeLimit: 1000 } });
    assert.deepEqual(parseActorOverrides("report:\n  storeResults: true\n  maxRetries: null\n  futureOption: 1\n"), { report: { storeResults: true, maxRetries: null } });
    assert.deepEqual(parseActorOverrides(""), {});
    assert.throws(() => parseActorOverrides('{"a": {"maxRetries": "three"}}'), /maxRetries of actor "a" must be a number/);
    assert.throws(() => parseActorOverrides("[1, 2]"), /must map actor names/);
    assert.throws(() => parseActorOverrides('{"a": 5}'), /must be a mapping/);
  });

  test("follows a ConfigMap-style symlink swap and keeps the last good overrides on a bad file", async () => {
    // The kubelet's layout: actors.json -> ..data/actors.json, ..data -> ..<timestamp>/ , swapped atomically.
    const mount = join(dir, "mount");
    await mkdir(join(mount, "..v1"), { recursive: true });
    await writeFile(join(mount, "..v1", "actors.json"), JSON.stringify({ a: { maxRetries: 1 } }));
    await symlink("..v1", join(mount, "..data"));
    await symlink(join("..data", "actors.json"), join(mount, "actors.json"));

    const seen: ActorOverrides[] = [];
    const watcher = await watchActorOverrides((o) => seen.push(o), { path: join(mount, "actors.json"), debounceMs: 10 });
    assert.ok(watcher);
    try {
      assert.deepEqual(seen, [{ a: { maxRetries: 1 } }], "called once at start");

      const swap = async (version: string, content: string) => {
        await mkdir(join(mount, version));
        await writeFile(join(mount, version, "actors.json"), content);
        await symlink(version, join(mount, "..data_tmp"));
        await rename(join(mount, "..data_tmp"), join(mount, "..data"));
      };
      await swap("..v2", JSON.stringify({ a: { maxRetries: 2 }, b: { timeLimit: 5 } }));
      await until(() => seen.length === 2, "the change after the symlink swap");
      assert.deepEqual(seen[1], { a: { maxRetries: 2 }, b: { timeLimit: 5 } });

      await swap("..v3", "{ not valid");
      await swap("..v4", JSON.stringify({ a: { maxRetries: 4 } }));
      await until(() => seen.length === 3, "the next good version");
      assert.deepEqual(seen[2], { a: { maxRetries: 4 } }, "the invalid version was skipped");
    } finally {
      watcher.close();
    }
  });

  test("a missing file means no overrides; no path means no watcher", async () => {
    const seen: ActorOverrides[] = [];
    const watcher = await watchActorOverrides((o) => seen.push(o), { path: join(dir, "absent", "actors.json") });
    watcher?.close();
    assert.deepEqual(seen, [{}]);
    assert.equal(await watchActorOverrides(() => undefined, { path: "" }), undefined);
  });
});
