import { parseArgs, type ParseArgsConfig } from "node:util";
import { resolve } from "node:path";
import { existsSync, statSync } from "node:fs";
import { brokerUrlFromEnv, isMemoryBrokerUrl, isWellFormedBrokerUrl } from "../setup.js";
import { UsageError } from "./command.js";
import { redactUrl } from "../logging.js";

type Options = NonNullable<ParseArgsConfig["options"]>;
type Parsed<T extends Options> = ReturnType<typeof parseArgs<{ options: T; allowPositionals: true; strict: true }>>;

/**
 * parseArgs with errors turned into usage errors. A negative number after an option that takes a value (`-t -3`)
 * is taken as that value, so that the range check can say what is wrong instead of parseArgs' "ambiguous".
 */
export function parse<T extends Options>(argv: string[], options: T, allowPositionals = true): Parsed<T> {
  try {
    return parseArgs({ args: joinNegativeValues(argv, options), options, allowPositionals, strict: true }) as Parsed<T>;
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

function joinNegativeValues(argv: string[], options: Options): string[] {
  const takesValue = new Set<string>();
  for (const [long, option] of Object.entries(options)) {
    if (option.type !== "string") continue;
    takesValue.add(`--${long}`);
    if (option.short) takesValue.add(`-${option.short}`);
  }
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    if (takesValue.has(arg) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg.startsWith("--") ? arg : `--${longName(options, arg.slice(1))}`}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}

function longName(options: Options, short: string): string {
  return Object.entries(options).find(([, option]) => option.short === short)![0];
}

/** An integer option within [min, max]; anything else is a usage error naming the range. */
export function intOption(value: string | undefined, name: string, fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    throw new UsageError(`--${name} must be ${range}, got "${value}"`);
  }
  return n;
}

/**
 * The broker URL a command uses: `-b`, else TROUPE_BROKER_URL, else the in-memory broker. An empty flag or
 * variable counts as unset, the same for every command.
 */
export function brokerUrlOption(flag: string | undefined): string {
  const url = flag || brokerUrlFromEnv();
  if (!isWellFormedBrokerUrl(url)) {
    throw new UsageError(`broker URL ${redactUrl(url)} is not a valid URL (check the scheme, the host, and that the port is a number from 1 to 65535)`);
  }
  return url;
}

/**
 * The broker URL of a command that talks to a broker other processes use (enqueue, queues, dead-letters). The
 * memory broker lives inside one process, so from a separate command it is always empty and what is sent to it
 * vanishes on exit: an error, not a silent success.
 */
export function sharedBrokerUrlOption(flag: string | undefined, command: string): string {
  const url = brokerUrlOption(flag);
  if (isMemoryBrokerUrl(url)) {
    throw new UsageError(
      `${command} needs a broker that other processes share: the memory broker lives inside one process, so nothing a worker runs could be reached from here. Pass -b redis://… or -b amqp://…, or set TROUPE_BROKER_URL`,
    );
  }
  return url;
}

export function numberOption(value: string | undefined, name: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) throw new UsageError(`--${name} must be a number >= ${min}, got "${value}"`);
  return n;
}

/** `--queues a,b --queues c` → [a, b, c]. */
export function listOption(values: string[] | undefined): string[] {
  return (values ?? []).flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean);
}

export function jsonOption(value: string | undefined, name: string, fallback: unknown): unknown {
  if (value === undefined) return fallback;
  try {
    return JSON.parse(value);
  } catch (err) {
    throw new UsageError(`--${name} is not valid JSON: ${(err as Error).message}`);
  }
}

const MODULE_EXTENSIONS = ["", ".ts", ".mts", ".js", ".mjs", "/index.ts", "/index.js"];

/**
 * Actor module paths, made absolute: each is looked for in the current folder, then in each `--path` folder (as
 * Dramatiq's --path extends sys.path), as given, with a usual extension, or as a folder's index; a dotted name with
 * no extension (`app.tasks`) is also read as a path (`app/tasks`). A module found nowhere is a usage error.
 */
export function modulePaths(specs: string[], searchPaths: string[] = []): string[] {
  const bases = [".", ...searchPaths];
  return specs.map((spec) => {
    const names = /^[\w-]+(\.[\w-]+)+$/.test(spec) && !/\.(c|m)?(t|j)s$/.test(spec) ? [spec, spec.replaceAll(".", "/")] : [spec];
    for (const base of bases) {
      for (const name of names) {
        for (const ext of MODULE_EXTENSIONS) {
          const abs = resolve(base, name + ext);
          if (existsSync(abs) && !(ext === "" && statSync(abs).isDirectory())) return abs;
        }
      }
    }
    throw new UsageError(`actor module not found: ${spec}${searchPaths.length ? ` (looked in ., ${searchPaths.join(", ")})` : ""}`);
  });
}
