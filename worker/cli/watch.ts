import { readdirSync, statSync, watch } from "node:fs";
import { join, relative, sep } from "node:path";
import { getLogger } from "../logging.js";

const log = getLogger("cli.watch");

export const DEFAULT_WATCH_INCLUDE = ["**/*.{ts,mts,cts,js,mjs,cjs,json}"];
export const DEFAULT_WATCH_EXCLUDE = ["**/node_modules/**", "**/.git/**"];
/** Quiet time after the last change before reloading: an editor's save or a build writes several files. */
const DEBOUNCE_MS = 300;
const POLL_MS = 500;

/** A glob (`**` any folders, `*` and `?` within a name, `{a,b}` alternatives) as a regexp on `/`-separated paths. */
export function globRegExp(glob: string): RegExp {
  let out = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*" && glob[i + 1] === "*") {
      const slash = glob[i + 2] === "/";
      out += slash ? "(?:.*/)?" : ".*";
      i += slash ? 2 : 1;
    } else if (c === "*") out += "[^/]*";
    else if (c === "?") out += "[^/]";
    else if (c === "{") out += "(?:";
    else if (c === "}") out += ")";
    else if (c === ",") out += "|";
    else out += c.replace(/[.+^$()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${out}$`);
}

export interface WatchOptions {
  root: string;
  include: string[];
  exclude: string[];
  /** Scan the tree every half second instead of using inotify (network and container file systems). */
  poll: boolean;
}

/** Call `onChange` with the files changed under `root` (debounced); returns the function that stops watching. */
export function watchTree(options: WatchOptions, onChange: (files: string[]) => void): () => void {
  const include = options.include.map(globRegExp);
  const exclude = options.exclude.map(globRegExp);
  const wanted = (path: string) => include.some((r) => r.test(path)) && !exclude.some((r) => r.test(path));
  const changed = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  const noticed = (file: string) => {
    const path = file.split(sep).join("/");
    if (!wanted(path)) return;
    changed.add(path);
    clearTimeout(timer);
    timer = setTimeout(() => {
      const files = [...changed].sort();
      changed.clear();
      log.info("files changed", { files: files.slice(0, 20), count: files.length });
      onChange(files);
    }, DEBOUNCE_MS);
  };
  let close: () => void;
  if (options.poll) {
    let previous = snapshot(options.root, exclude);
    const interval = setInterval(() => {
      const next = snapshot(options.root, exclude);
      for (const [file, stamp] of next) if (previous.get(file) !== stamp) noticed(file);
      for (const file of previous.keys()) if (!next.has(file)) noticed(file);
      previous = next;
    }, POLL_MS);
    close = () => clearInterval(interval);
  } else {
    const watcher = watch(options.root, { recursive: true }, (_event, file) => file && noticed(file.toString()));
    close = () => watcher.close();
  }
  log.info("watching for changes", { root: options.root, include: options.include, exclude: options.exclude, poll: options.poll });
  return () => {
    clearTimeout(timer);
    close();
  };
}

/** Each file under `root` with its modification time and size, skipping excluded folders. */
function snapshot(root: string, exclude: RegExp[]): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = join(dir, entry.name);
      const path = relative(root, full).split(sep).join("/");
      if (entry.isDirectory()) {
        if (!exclude.some((r) => r.test(`${path}/x`))) walk(full);
      } else if (entry.isFile()) {
        try {
          const stat = statSync(full);
          out.set(path, `${stat.mtimeMs}:${stat.size}`);
        } catch {
          // Removed between the listing and the stat: the next scan sees it gone.
        }
      }
    }
  };
  walk(root);
  return out;
}
