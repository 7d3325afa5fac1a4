import { readdirSync, statSync, watch, type Dirent, type FSWatcher } from "node:fs";
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
  const excludedFolder = (path: string) => exclude.some((r) => r.test(`${path}/x`));
  let close: () => void;
  if (options.poll) {
    let previous = snapshot(options.root, excludedFolder);
    const interval = setInterval(() => {
      const next = snapshot(options.root, excludedFolder);
      for (const [file, stamp] of next) if (previous.get(file) !== stamp) noticed(file);
      for (const file of previous.keys()) if (!next.has(file)) noticed(file);
      previous = next;
    }, POLL_MS);
    close = () => clearInterval(interval);
  } else {
    close = watchFolders(options.root, excludedFolder, noticed);
  }
  log.info("watching for changes", { root: options.root, include: options.include, exclude: options.exclude, poll: options.poll });
  return () => {
    clearTimeout(timer);
    close();
  };
}

/**
 * Each folder under `root`, skipping excluded ones, with its entries; unreadable folders (removed meanwhile) are
 * skipped. `beforeListing` runs on a folder before it is read.
 */
function walkFolders(
  root: string,
  dir: string,
  excludedFolder: (path: string) => boolean,
  visit: (dir: string, entries: Dirent[]) => void,
  beforeListing?: (dir: string) => void,
): void {
  const path = relative(root, dir).split(sep).join("/");
  if (path && excludedFolder(path)) return;
  beforeListing?.(dir);
  let entries: Dirent[];
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  visit(dir, entries);
  for (const entry of entries) if (entry.isDirectory()) walkFolders(root, join(dir, entry.name), excludedFolder, visit, beforeListing);
}

/**
 * One non-recursive inotify watch per folder, never entering excluded ones. Node 20's `recursive: true` on Linux
 * watches every file of the tree, node_modules included: a small project took 18,594 inotify watches, 4 s and 80 MB
 * to start, and a larger one exceeds the usual limit of 8,192 watches and fails. A folder created or moved in
 * later is watched from then on, and its files count as changed.
 */
function watchFolders(root: string, excludedFolder: (path: string) => boolean, noticed: (file: string) => void): () => void {
  const watchers = new Map<string, FSWatcher>();
  const unwatch = (dir: string) => {
    for (const [watched, watcher] of watchers) {
      if (watched !== dir && !watched.startsWith(dir + sep)) continue;
      watcher.close();
      watchers.delete(watched);
    }
  };
  // A folder is watched before it is listed: a file or folder made between the listing and the watch (a build
  // writing into a folder it has just made) would be in neither.
  const add = (dir: string, announce: boolean) => {
    const fresh = new Set<string>();
    const startWatching = (folder: string) => {
      if (watchers.has(folder)) return;
      try {
        const watcher = watch(folder, (_event, name) => name && changed(join(folder, name.toString())));
        // A watched folder that is removed errors on some kernels instead of reporting a rename.
        watcher.on("error", () => unwatch(folder));
        watchers.set(folder, watcher);
        fresh.add(folder);
      } catch {
        // Removed meanwhile: its listing fails too, and the rename was reported to its parent.
      }
    };
    walkFolders(
      root,
      dir,
      excludedFolder,
      (folder, entries) => {
        if (!announce || !fresh.has(folder)) return;
        for (const entry of entries) if (entry.isFile()) noticed(relative(root, join(folder, entry.name)));
      },
      startWatching,
    );
  };
  const changed = (full: string) => {
    let folder = false;
    try {
      folder = statSync(full).isDirectory();
    } catch {
      unwatch(full);
    }
    if (folder) add(full, true);
    else noticed(relative(root, full));
  };
  add(root, false);
  return () => unwatch(root);
}

/** Each file under `root` with its modification time and size, skipping excluded folders. */
function snapshot(root: string, excludedFolder: (path: string) => boolean): Map<string, string> {
  const out = new Map<string, string>();
  walkFolders(root, root, excludedFolder, (dir, entries) => {
    for (const entry of entries) {
      if (!entry.isFile()) continue;
      const full = join(dir, entry.name);
      try {
        const stat = statSync(full);
        out.set(relative(root, full).split(sep).join("/"), `${stat.mtimeMs}:${stat.size}`);
      } catch {
        // Removed between the listing and the stat: the next scan sees it gone.
      }
    }
  });
  return out;
}
