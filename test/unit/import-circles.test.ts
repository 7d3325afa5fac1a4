import { test } from "node:test";
import assert from "node:assert/strict";
import { describeCircle, importCircles, importGraph, importTimeStatements } from "../support/import-graph.js";
import { repoRoot } from "../support/env.js";

const DIRS = ["worker", "operator"];

test("no import circle among worker/ and operator/ files, type-only imports included", () => {
  const edges = importGraph(repoRoot, DIRS);
  // The walk must see the real graph: a broken resolver would find no edge and no circle.
  assert.ok(edges.length > 300, `only ${edges.length} imports found`);
  assert.ok(edges.some((e) => e.from === "worker/setup.ts" && e.to === "worker/brokers/redis.ts" && !e.typeOnly));
  const circles = importCircles(edges);
  assert.deepEqual(circles.map((circle) => `${circle.length} files: ${describeCircle(circle, edges)}`), []);
});

test("the circle finder reports a circle, through type-only imports too", () => {
  const edges = [
    { from: "a.ts", to: "b.ts", typeOnly: false },
    { from: "b.ts", to: "c.ts", typeOnly: true },
    { from: "c.ts", to: "a.ts", typeOnly: false },
    { from: "c.ts", to: "d.ts", typeOnly: false },
  ];
  assert.deepEqual(importCircles(edges), [["a.ts", "b.ts", "c.ts"]]);
  assert.equal(describeCircle(["a.ts", "b.ts", "c.ts"], edges), "a.ts → b.ts → c.ts → a.ts");
  assert.deepEqual(importCircles(edges.slice(0, 2)), []);
});

test("importing a module runs nothing but declarations, except in the two entry points", () => {
  const entryPoints = ["worker/cli/main.ts", "worker/runtime/thread-entry.ts"];
  const found = importTimeStatements(repoRoot, DIRS).filter((line) => !entryPoints.some((entry) => line.startsWith(`${entry}:`)));
  assert.deepEqual(found, []);
});
