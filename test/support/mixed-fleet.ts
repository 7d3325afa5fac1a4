import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";

export interface Runs {
  /** Ids whose run began in a Troupe worker. */
  started: string[];
  /** Ids that ran to their end, each with the pid of the Troupe process or "python" for a simulated peer. */
  ran: { id: string; by: string }[];
}

/** The tally file of test/fixtures/mixed-fleet.ts, to which the tests' simulated Python peers append too. */
export async function runs(file: string): Promise<Runs> {
  const lines = (await readFile(file, "utf8").catch(() => "")).split("\n").filter(Boolean).map((line) => line.split(" "));
  return {
    started: lines.filter(([what]) => what === "started").map(([, id]) => id!),
    ran: lines.filter(([what]) => what === "ran").map(([, id, by]) => ({ id: id!, by: by! })),
  };
}

export function assertRanOnce(ids: string[], ran: Runs["ran"], by: (who: string) => boolean): void {
  assert.deepEqual(ran.map((r) => r.id).sort(), [...ids].sort(), "every message ran exactly once");
  assert.ok(ran.every((r) => by(r.by)), `ran by the expected side: ${JSON.stringify(ran)}`);
}
