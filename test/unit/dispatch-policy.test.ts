import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { GROW_OCCUPANCY, LOOKAHEAD_MAX_MS, MAX_PACKED, PACK_BUDGET_MS, capacityFor, expectedMs, pickThread, wantsAnotherThread, type ThreadLoad } from "../../worker/runtime/dispatch-policy.js";

const settings = { concurrency: 1, lookahead: 3 };
const idle = (): ThreadLoad => ({ tasks: 0, backlogMs: 0 });
const noop = expectedMs(0.005);
const slow = expectedMs(50);
/** Too long to pack, short enough to send ahead (a 1 ms I/O actor measures about this). */
const short = expectedMs(1.3);
const unknown = expectedMs(undefined);

/** Dispatch `count` messages of one kind onto `loads` the way the pool does; returns the thread of each. */
function dispatch(loads: (ThreadLoad | undefined)[], expected: number, count: number, s = settings): number[] {
  const picks: number[] = [];
  for (let i = 0; i < count; i++) {
    const index = pickThread(loads, expected, s);
    picks.push(index);
    if (index < 0) break;
    loads[index]!.tasks++;
    loads[index]!.backlogMs += expected;
  }
  return picks;
}

describe("dispatch policy", () => {
  test("quick messages are packed onto one thread, up to a millisecond of work, then onto the next", () => {
    const loads = [idle(), idle(), idle()];
    const perThread = Math.floor(PACK_BUDGET_MS / noop);
    const picks = dispatch(loads, noop, perThread + 2);
    assert.deepEqual(picks, [...picks].sort((a, b) => a - b), "thread 0 fills before thread 1 gets any");
    const onFirst = picks.filter((p) => p === 0).length;
    // Summed in floating point, the budget holds perThread or one fewer.
    assert.ok(onFirst >= perThread - 1 && onFirst <= perThread, `${onFirst} packed on thread 0`);
    assert.ok(picks.slice(onFirst).every((p) => p === 1));
  });

  test("short and never-measured actors are spread over the least busy threads, lookahead ahead of each", () => {
    for (const expected of [short, unknown]) {
      const loads = [idle(), idle(), idle()];
      const picks = dispatch(loads, expected, 13);
      assert.deepEqual(picks.slice(0, 3), [0, 1, 2], "one per thread first");
      assert.deepEqual(loads.map((l) => l.tasks), [4, 4, 4], "then concurrency + lookahead each");
      assert.equal(picks[12], -1, "then no room");
    }
  });

  test("slow actors go only to a thread with a free slot: none waits on a thread behind another", () => {
    const loads = [idle(), idle(), idle()];
    assert.deepEqual(dispatch(loads, slow, 4), [0, 1, 2, -1], "one per thread, then they wait in the main thread");
    const concurrent = { concurrency: 2, lookahead: 3 };
    assert.deepEqual(dispatch([idle(), idle()], slow, 5, concurrent), [0, 1, 0, 1, -1], "as many per thread as it runs at once");
    assert.equal(capacityFor(slow, 8, settings), 8);
    assert.equal(capacityFor(slow, 8, concurrent), 16);
  });

  test("the lookahead threshold: just under it a message is sent ahead, at it not", () => {
    const busy = (): ThreadLoad => ({ tasks: 1, backlogMs: 5 });
    assert.equal(pickThread([busy()], LOOKAHEAD_MAX_MS - 0.001, settings), 0);
    assert.equal(pickThread([busy()], LOOKAHEAD_MAX_MS, settings), -1);
  });

  test("a slow message goes to the idle thread, never behind a busy one", () => {
    const loads = [{ tasks: 1, backlogMs: 50 }, idle()];
    assert.equal(pickThread(loads, slow, settings), 1);
    assert.equal(pickThread([{ tasks: 1, backlogMs: 50 }], slow, settings), -1);
  });

  test("nothing is packed behind a slow or never-measured message", () => {
    for (const ahead of [slow, unknown]) {
      const loads = [{ tasks: 1, backlogMs: ahead }, idle()];
      assert.equal(pickThread(loads, noop, settings), 1);
    }
  });

  test("lookahead 0 packs nothing: strict priority order", () => {
    const strict = { concurrency: 1, lookahead: 0 };
    const loads = [idle(), idle()];
    assert.deepEqual(dispatch(loads, noop, 3, strict), [0, 1, -1]);
    assert.equal(capacityFor(noop, 2, strict), 2);
  });

  test("threads being replaced take nothing", () => {
    assert.equal(pickThread([undefined, idle()], noop, settings), 1);
    assert.equal(pickThread([undefined, undefined], slow, settings), -1);
  });

  test("capacity counts packed room only for quick actors", () => {
    assert.equal(capacityFor(noop, 8, settings), 8 * (1 + MAX_PACKED));
    assert.equal(capacityFor(short, 8, settings), 8 * (1 + 3));
    assert.equal(capacityFor(unknown, 8, settings), 8 * (1 + 3));
    assert.equal(capacityFor(slow, 8, settings), 8);
  });

  test("another thread is wanted when no thread has a free slot; for quick actors only when none has room even packed and every thread is busy", () => {
    const running = (): ThreadLoad => ({ tasks: 1, backlogMs: 5 });
    for (const expected of [slow, short, unknown]) {
      assert.equal(wantsAnotherThread([running(), idle()], expected, settings), false, "a thread is free");
      assert.equal(wantsAnotherThread([running(), running()], expected, settings), true, "every thread runs one");
      assert.equal(wantsAnotherThread([undefined], expected, settings), true, "the only thread is being replaced");
    }
    const loads = [idle()];
    dispatch(loads, noop, Math.floor(PACK_BUDGET_MS / noop / 2));
    assert.equal(wantsAnotherThread(loads, noop, settings), false, "half a thread's budget of quick messages: no other wanted");
    const full = dispatch(loads, noop, MAX_PACKED);
    assert.equal(full.at(-1), -1, "the budget is full");
    assert.equal(wantsAnotherThread(loads, noop, settings), false, "no room left, but the thread was not measured busy");
    loads[0]!.occupancy = GROW_OCCUPANCY / 2;
    assert.equal(wantsAnotherThread(loads, noop, settings), false, "no room left, but the thread is mostly idle");
    loads[0]!.occupancy = GROW_OCCUPANCY;
    assert.equal(wantsAnotherThread(loads, noop, settings), true, "no room left and the thread busy");
    assert.equal(wantsAnotherThread([{ tasks: 1, backlogMs: 5, occupancy: 0 }, { tasks: 1, backlogMs: 5, occupancy: 0 }], short, settings), true, "occupancy matters to quick actors only");
    assert.equal(wantsAnotherThread([running()], noop, { concurrency: 1, lookahead: 0 }), true, "lookahead 0 packs nothing");
  });

  test("a pick always has room, every thread keeps at least concurrency (+ lookahead for short actors), none exceeds the packing cap", () => {
    const arbLoad = fc.option(fc.record({ tasks: fc.integer({ min: 0, max: 80 }), backlogMs: fc.double({ min: 0, max: 20, noNaN: true }) }), { nil: undefined });
    fc.assert(
      fc.property(
        fc.array(arbLoad, { minLength: 1, maxLength: 16 }),
        fc.oneof(fc.constant(undefined), fc.double({ min: 0, max: 10, noNaN: true })),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 8 }),
        (loads, average, concurrency, lookahead) => {
          const s = { concurrency, lookahead };
          const expected = expectedMs(average);
          const index = pickThread(loads, expected, s);
          const ahead = expected < LOOKAHEAD_MAX_MS ? lookahead : 0;
          const withRoomByLookahead = loads.findIndex((l) => l !== undefined && l.tasks < concurrency + ahead);
          if (withRoomByLookahead >= 0) assert.ok(index >= 0, "a thread under its lookahead always has room");
          if (index < 0) return;
          const picked = loads[index]!;
          assert.ok(picked.tasks < concurrency + Math.max(lookahead, MAX_PACKED), "never past the packing cap");
          if (expected >= LOOKAHEAD_MAX_MS) assert.ok(picked.tasks < concurrency, "a slow message only where a slot is free");
          if (picked.tasks >= concurrency + ahead) {
            assert.ok(lookahead > 0 && expected < PACK_BUDGET_MS, "only quick messages go past the lookahead");
            assert.ok(picked.backlogMs / concurrency + expected <= PACK_BUDGET_MS, "and only within the budget");
          }
        },
      ),
    );
  });
});
