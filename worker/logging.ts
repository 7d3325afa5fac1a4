/**
 * Structured logs: one JSON object per line on stderr, with the message id, actor and queue when there is one.
 * Credentials never reach a log line: URLs pass through `redactUrl` before they are logged.
 */
import { openSync, writeSync } from "node:fs";

export type LogLevel = "debug" | "info" | "warn" | "error" | "critical";
const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, critical: 50 };

export type LogFields = Record<string, unknown>;
export type LogSink = (line: string) => void;

let threshold = LEVELS[(process.env.TROUPE_LOG_LEVEL as LogLevel) ?? "info"] ?? LEVELS.info;
let logFile: { path: string; fd: number } | undefined;
/**
 * stderr, or the file TROUPE_LOG_FILE names (`troupe worker --log-file`): appended to with one synchronous write
 * per line, so the processes and threads of a worker share it whole-line and nothing is lost at exit.
 */
let sink: LogSink = (line) => {
  const path = process.env.TROUPE_LOG_FILE;
  if (!path) return void process.stderr.write(line + "\n");
  if (logFile?.path !== path) logFile = { path, fd: openSync(path, "a") };
  writeSync(logFile.fd, line + "\n");
};

export function setLogLevel(level: LogLevel): void {
  threshold = LEVELS[level];
}

/** Replace where log lines go (tests capture them; the CLI keeps stderr). */
export function setLogSink(next: LogSink): LogSink {
  const previous = sink;
  sink = next;
  return previous;
}

function errorFields(err: unknown): LogFields {
  if (err instanceof Error) return { error: err.message, errorType: err.name, stack: err.stack };
  return { error: String(err) };
}

export class Logger {
  constructor(
    readonly name: string,
    private readonly base: LogFields = {},
  ) {}

  child(fields: LogFields): Logger {
    return new Logger(this.name, { ...this.base, ...fields });
  }

  log(level: LogLevel, msg: string, fields: LogFields = {}): void {
    if (LEVELS[level] < threshold) return;
    const { err, ...rest } = fields;
    const record = { time: new Date().toISOString(), level, logger: this.name, pid: process.pid, msg, ...this.base, ...rest, ...(err === undefined ? {} : errorFields(err)) };
    sink(JSON.stringify(record));
  }

  debug(msg: string, fields?: LogFields): void {
    this.log("debug", msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.log("info", msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.log("warn", msg, fields);
  }
  error(msg: string, fields?: LogFields): void {
    this.log("error", msg, fields);
  }
  critical(msg: string, fields?: LogFields): void {
    this.log("critical", msg, fields);
  }
}

export function getLogger(name: string): Logger {
  return new Logger(`troupe.${name}`);
}

/**
 * Send what libraries print with `console.warn` through the JSON logger, so a command's stderr stays one JSON
 * object per line (ioredis, for one, warns in plain text about a password the server does not need). Called by
 * the CLI once at startup; a library importing Troupe keeps its own console.
 */
export function routeConsoleWarnings(): void {
  const logger = getLogger("console");
  console.warn = (...parts: unknown[]) => {
    const text = parts.map((p) => (typeof p === "string" ? p : p instanceof Error ? p.message : JSON.stringify(p))).join(" ");
    logger.warn(text.replace(/^\[WARN\]\s*/, ""));
  };
}

/** The fields every log line about a message carries. */
export function messageFields(message: { messageId: string; actorName: string; queueName: string }): LogFields {
  return { messageId: message.messageId, actor: message.actorName, queue: message.queueName };
}

/**
 * A URL with its password replaced by `***`, safe to log or put in an error. Done on the text, not with a URL
 * parser: a password with an unencoded '/' or '@' makes the URL parse wrongly (or not at all) and must still be
 * hidden. The password runs from the first ':' after '//' to the last '@'.
 */
export function redactUrl(url: string): string {
  const start = url.indexOf("//");
  const at = url.lastIndexOf("@");
  if (start < 0 || at < start) return url;
  const userinfo = url.slice(start + 2, at);
  const colon = userinfo.indexOf(":");
  if (colon < 0) return url;
  return `${url.slice(0, start + 2)}${userinfo.slice(0, colon)}:***${url.slice(at)}`;
}
