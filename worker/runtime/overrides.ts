import { watch, type FSWatcher } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import type * as Yaml from "yaml";
import { getLogger } from "../logging.js";
import { lazyRequire } from "../lazy.js";
import { OVERRIDABLE_OPTIONS, overrideMismatch, type OverridableOptions } from "../options.js";

export type ActorOverrides = Record<string, OverridableOptions>;

const log = getLogger("overrides");
const yaml = lazyRequire<typeof Yaml>("yaml");

/**
 * Parse an overrides document (JSON or YAML): `{ actorName: { option: value } }`, each option one of
 * OVERRIDABLE_OPTIONS. Throws on a document that is not such a mapping or has a value its schema refuses; unknown option names are dropped with a warning so that an
 * operator newer than the worker does not stop it from applying the options it knows.
 */
export function parseActorOverrides(text: string): ActorOverrides {
  const doc: unknown = text.trim() === "" ? {} : yaml().parse(text);
  if (doc === null || typeof doc !== "object" || Array.isArray(doc)) throw new Error("the overrides file must map actor names to options");
  const out: ActorOverrides = {};
  for (const [actorName, options] of Object.entries(doc as Record<string, unknown>)) {
    if (options === null || typeof options !== "object" || Array.isArray(options)) throw new Error(`options of actor "${actorName}" must be a mapping`);
    const clean: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(options as Record<string, unknown>)) {
      if (!Object.hasOwn(OVERRIDABLE_OPTIONS, key)) {
        log.warn("ignoring an unknown actor option in the overrides file", { actor: actorName, option: key });
        continue;
      }
      const wanted = overrideMismatch(OVERRIDABLE_OPTIONS[key as keyof OverridableOptions], value);
      if (wanted) throw new Error(`option ${key} of actor "${actorName}" must be ${wanted}, got ${JSON.stringify(value)}`);
      clean[key] = value;
    }
    out[actorName] = clean as OverridableOptions;
  }
  return out;
}

export interface OverridesWatcher {
  close(): void;
}

/**
 * Watch an actor overrides file (default: `$TROUPE_ACTOR_OVERRIDES`, the mounted `troupe-actors` ConfigMap) and call
 * `onChange` with its content at start and after every change. A ConfigMap volume is updated by swapping a symlink
 * in the file's directory, so the directory is watched, not the file, and a slow poll catches what inotify misses.
 * A missing file means no overrides; a file that does not parse is logged and the previous overrides stay.
 * Returns undefined when no path is configured.
 */
export async function watchActorOverrides(
  onChange: (overrides: ActorOverrides) => void,
  { path = process.env.TROUPE_ACTOR_OVERRIDES, pollMs = 10_000, debounceMs = 50 }: { path?: string; pollMs?: number; debounceMs?: number } = {},
): Promise<OverridesWatcher | undefined> {
  if (!path) return undefined;
  const file = path;
  let last: string | undefined;
  let closed = false;

  async function reload(): Promise<void> {
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
        log.error("cannot read the actor overrides file", { path: file, err });
        return;
      }
      text = "";
    }
    if (closed || text === last) return;
    try {
      const overrides = parseActorOverrides(text);
      last = text;
      log.info("actor overrides loaded", { path: file, actors: Object.keys(overrides) });
      onChange(overrides);
    } catch (err) {
      last = text;
      log.error("the actor overrides file is invalid; keeping the previous overrides", { path: file, err });
    }
  }

  await reload();
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    clearTimeout(timer);
    timer = setTimeout(() => void reload(), debounceMs);
  };
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(dirname(file), (_event, name) => {
      if (!name || name === basename(file) || name.startsWith("..")) schedule();
    });
    watcher.on("error", (err) => log.warn("watching the overrides directory failed; polling only", { path: file, err }));
  } catch (err) {
    log.warn("cannot watch the overrides directory; polling only", { path: file, err });
  }
  const poll = setInterval(() => void reload(), pollMs);
  poll.unref();
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      clearInterval(poll);
      watcher?.close();
    },
  };
}
