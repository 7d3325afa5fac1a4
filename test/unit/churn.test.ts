import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { ChurnMap, ChurnSet } from "troupe";

/** A small deterministic generator, so a failing sequence of operations can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

describe("ChurnMap and ChurnSet", () => {
  test("a ChurnMap agrees with a Map through thousands of sets and deletes, across its renewals", async () => {
    const next = random(7);
    const churn = new ChurnMap<string, number>();
    const reference = new Map<string, number>();
    for (let op = 0; op < 20_000; op++) {
      const key = `k${Math.floor(next() * 300)}`;
      if (next() < 0.5) {
        churn.set(key, op);
        reference.set(key, op);
      } else {
        assert.equal(churn.delete(key), reference.delete(key));
      }
      // Renewals happen in microtasks: let some run between operations, as the event loop would.
      if (op % 97 === 0) await Promise.resolve();
      assert.equal(churn.size, reference.size);
    }
    await Promise.resolve();
    assert.deepEqual([...churn], [...reference]);
    assert.deepEqual([...churn.keys()], [...reference.keys()]);
    assert.deepEqual([...churn.values()], [...reference.values()]);
    for (const key of reference.keys()) {
      assert.equal(churn.get(key), reference.get(key));
      assert.ok(churn.has(key));
    }
  });

  test("a synchronous loop that deletes as it goes visits every entry once, however many deletions it makes", async () => {
    const churn = new ChurnMap<number, string>();
    for (let i = 0; i < 1000; i++) churn.set(i, `v${i}`);
    const visited: number[] = [];
    for (const [key] of churn) {
      visited.push(key);
      churn.delete(key);
    }
    assert.deepEqual(visited, Array.from({ length: 1000 }, (_, i) => i));
    await Promise.resolve();
    assert.equal(churn.size, 0);
    assert.deepEqual([...churn], []);
  });

  test("a ChurnSet agrees with a Set through thousands of adds and deletes, and clear empties it", async () => {
    const next = random(11);
    const churn = new ChurnSet<object>();
    const reference = new Set<object>();
    const pool = Array.from({ length: 200 }, (_, i) => ({ i }));
    for (let op = 0; op < 20_000; op++) {
      const value = pool[Math.floor(next() * pool.length)]!;
      if (next() < 0.5) {
        churn.add(value);
        reference.add(value);
      } else {
        assert.equal(churn.delete(value), reference.delete(value));
      }
      if (op % 89 === 0) await Promise.resolve();
    }
    await Promise.resolve();
    assert.deepEqual([...churn], [...reference]);
    for (const value of pool) assert.equal(churn.has(value), reference.has(value));
    churn.clear();
    assert.equal(churn.size, 0);
    assert.deepEqual([...churn], []);
  });
});
