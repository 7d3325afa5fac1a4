import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { mkdir, mkdtemp, rename, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { parse } from "yaml";
import { API_VERSION, type ActorResource } from "../../operator/api/types.js";
import { loadCrdValidators } from "../../operator/api/crd-validator.js";
import { actorOverrides } from "../../operator/resources/actor-overrides.js";
import { OVERRIDABLE_OPTIONS, type OverridableOptions } from "../../worker/options.js";
import { parseActorOverrides, watchActorOverrides, type ActorOverrides } from "../../worker/runtime/overrides.js";
import { repoRoot } from "../support/env.js";
import { until } from "../support/wait.js";

const crdDir = join(repoRoot, "crds");

describe("the overridable actor options, declared once in worker/options.ts", () => {
  const crdOptions = () => {
    const crd = parse(readFileSync(join(crdDir, "actors.troupe.dev.yaml"), "utf8")) as {
      spec: { versions: { schema: { openAPIV3Schema: { properties: { spec: { properties: { options: { properties: unknown } } } } } } }[] };
    };
    return crd.spec.versions.map((v) => v.schema.openAPIV3Schema.properties.spec.properties.options.properties);
  };

  test("the Actor CRD declares exactly OVERRIDABLE_OPTIONS, with the same schemas", () => {
    for (const properties of crdOptions()) assert.deepEqual(properties, OVERRIDABLE_OPTIONS);
  });

  test("an Actor setting every option passes the CRD and reaches the worker unchanged through the overrides file", () => {
    const options = Object.fromEntries(
      Object.entries(OVERRIDABLE_OPTIONS).map(([key, schema]) => [key, schema.type === "integer" ? ("minimum" in schema ? schema.minimum : 0) + 1000 : schema.type === "boolean" ? true : `${key}_actor`]),
    ) as OverridableOptions;
    const actor: ActorResource = { apiVersion: API_VERSION, kind: "Actor", metadata: { name: "every-option", namespace: "ns" }, spec: { actorName: "every_option", options } };
    const validator = loadCrdValidators(crdDir, "reject").get(`${API_VERSION}/Actor`)!;
    assert.deepEqual(validator.check(structuredClone(actor) as unknown as Record<string, unknown>), []);
    const file = JSON.stringify(actorOverrides([actor]).overrides);
    assert.deepEqual(parseActorOverrides(file), { every_option: options });
  });

  test("the worker refuses what the CRD refuses", () => {
    const validator = loadCrdValidators(crdDir, "reject").get(`${API_VERSION}/Actor`)!;
    const cases: [keyof OverridableOptions, unknown, RegExp][] = [
      ["maxRetries", 1.5, /must be an integer >= 0 or null, got 1.5/],
      ["minBackoff", -1, /must be an integer >= 0, got -1/],
      ["timeLimit", 0, /must be an integer >= 1, got 0/],
      ["storeResults", "yes", /must be a boolean, got "yes"/],
      ["onSuccess", 5, /must be a string, got 5/],
    ];
    for (const [key, value, message] of cases) {
      const actor = { apiVersion: API_VERSION, kind: "Actor", metadata: { name: "bad" }, spec: { actorName: "bad", options: { [key]: value } } };
      assert.notDeepEqual(validator.check(actor), [], `the CRD refuses ${key}: ${JSON.stringify(value)}`);
      assert.throws(() => parseActorOverrides(JSON.stringify({ bad: { [key]: value } })), message);
    }
    assert.deepEqual(parseActorOverrides('{"forever": {"maxRetries": null}}'), { forever: { maxRetries: null } });
  });

  test("docs/operator.md names every option an Actor may set", () => {
    const doc = readFileSync(join(repoRoot, "docs", "operator.md"), "utf8");
    const sentence = /The `options` fields are ([^.]*)\./.exec(doc)?.[1] ?? "";
    assert.deepEqual([...sentence.matchAll(/`(\w+)`/g)].map((m) => m[1]).sort(), Object.keys(OVERRIDABLE_OPTIONS).sort());
  });
});

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
    assert.throws(() => parseActorOverrides('{"a": {"maxRetries": "three"}}'), /maxRetries of actor "a" must be an integer >= 0 or null/);
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
