import { readFileSync } from "node:fs";
import { until } from "./wait.js";

/**
 * The record the chaos actors keep: one line "id pid" per run, appended by every worker process. Counting it
 * against the ids sent tells what was lost, what ran twice and what ran without being sent.
 */
export interface Tally {
  /** Runs per id. */
  counts: Map<string, number>;
  /** Worker processes that ran something. */
  pids: Set<number>;
  runs: number;
}

export function readTally(file: string): Tally {
  const counts = new Map<string, number>();
  const pids = new Set<number>();
  let runs = 0;
  let text = "";
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  for (const line of text.split("\n")) {
    const [id, pid] = line.split(" ");
    if (!id || !pid) continue;
    counts.set(id, (counts.get(id) ?? 0) + 1);
    pids.add(Number(pid));
    runs++;
  }
  return { counts, pids, runs };
}

export interface Accounting {
  /** Ids that should have run and never did. */
  lost: string[];
  /** Extra runs of ids that ran more than once (at-least-once redeliveries). */
  duplicates: number;
  /** Ids that ran but were never sent (must be empty). */
  unexpected: string[];
}

export function account(expected: Iterable<string>, tally: Tally): Accounting {
  const wanted = new Set(expected);
  const lost = [...wanted].filter((id) => !tally.counts.has(id));
  const unexpected = [...tally.counts.keys()].filter((id) => !wanted.has(id));
  let duplicates = 0;
  for (const count of tally.counts.values()) duplicates += count - 1;
  return { lost, duplicates, unexpected };
}

/** Wait until every expected id has run at least once (or the deadline passes), then account. */
export async function awaitAll(source: { tally(): Tally }, expected: string[], timeout: number): Promise<Accounting> {
  await until(() => account(expected, source.tally()).lost.length === 0, `all ${expected.length} ids to run`, { timeout, interval: 100 }).catch(() => undefined);
  return account(expected, source.tally());
}
