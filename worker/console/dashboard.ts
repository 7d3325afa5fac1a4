import { readFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createRequire } from "node:module";
import type { Broker } from "../broker.js";
import { durationOption } from "../cli/duration.js";
import { deadLetterStore } from "../dead-letters/store.js";
import { letterJson, type DeadLetterFilter, type DeadLetterStore } from "../dead-letters/types.js";
import { getLogger } from "../logging.js";
import { qName } from "../queues.js";
import { DashboardAuth, SESSION_COOKIE, sameOrigin } from "./auth.js";
import type { Html } from "./html.js";
import { QueueMonitor, type Snapshot } from "./monitor.js";
import { RedisBroker } from "../brokers/redis.js";
import { RedisQueuedMessages, type QueuedEntry, type QueuedKind } from "../brokers/redis/queued.js";
import {
  DEFAULT_LIMIT,
  confirmPage,
  deadListPage,
  letterPage,
  listHref,
  loginPage,
  messagePage,
  overviewPage,
  queuedListPage,
  queuedPage,
  scheduleConfirmPage,
  schedulesPage,
  type ListQuery,
  type PageContext,
  type QueueCounts,
  type QueuedQuery,
  type StoredResult,
} from "./pages.js";
import { ResultFailure, ResultMissing } from "../errors.js";
import type { Message } from "../message.js";
import type { ResultBackend } from "../results/backend.js";
import { scheduleRows } from "../schedules/listing.js";
import { triggerMessage } from "../schedules/schedule.js";
import { scheduleStoreFor, type ScheduleStore } from "../schedules/store.js";

const log = getLogger("dashboard");

export interface DashboardOptions {
  broker: Broker;
  /** Token that unlocks actions (default: TROUPE_DASHBOARD_TOKEN). Without one, nobody can change a queue. */
  token?: string;
  /** Show everything, change nothing, whatever the token. */
  readOnly?: boolean;
  /** Queues to show (default: every queue the broker lists, at each sample). */
  queues?: string[];
  /** Time between samples of the broker, for the overview and its charts (ms, default 2000). */
  interval?: number;
  /** Results backend whose stored result message pages show (the CLI: TROUPE_RESULTS_URL, else the broker's Redis). */
  results?: ResultBackend;
  /** Samples kept for the charts (default 300: ten minutes at 2 s). */
  keep?: number;
  /** Path the handler is mounted under ("/troupe"); links carry it, and a request URL that starts with it has it removed. */
  basePath?: string;
  /**
   * `Host` header values accepted (host:port); others get 421. Set it when the dashboard listens on loopback, so
   * that a web page whose name resolves to 127.0.0.1 (DNS rebinding) cannot read it.
   */
  allowedHosts?: string[];
}

/** The dashboard: `handler` is a node:http request listener, mountable in any server. */
export interface Dashboard {
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  readonly monitor: QueueMonitor;
  /** Stops sampling and closes the dashboard's broker connections (not the broker itself). */
  close(): Promise<void>;
}

const SECURITY_HEADERS: Record<string, string> = {
  "Content-Security-Policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  // same-origin, not no-referrer: with no-referrer browsers send `Origin: null` on form posts, which sameOrigin() refuses.
  "Referrer-Policy": "same-origin",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Resource-Policy": "same-origin",
  "Cache-Control": "no-store",
};

/** Largest request body read (a form with a page of ids is a few KB). */
const MAX_BODY = 1 << 20;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A `user:password@` left in an error message by a library is shown as `user:***@`. */
export function redactSecrets(text: string): string {
  return text.replace(/(\/\/[^:/@\s]*:)[^@\s]*@/g, "$1***@");
}

const require = createRequire(import.meta.url);
const STATIC_DIR = new URL("../../../worker/console/static/", import.meta.url);

/** Served files: the dashboard's own and uPlot's prebuilt bundle from node_modules (no CDN, no build step). */
function loadAssets(): Map<string, { type: string; body: Buffer }> {
  const js = "text/javascript; charset=utf-8";
  const css = "text/css; charset=utf-8";
  return new Map([
    ["dashboard.js", { type: js, body: readFileSync(new URL("dashboard.js", STATIC_DIR)) }],
    ["dashboard.css", { type: css, body: readFileSync(new URL("dashboard.css", STATIC_DIR)) }],
    ["uplot.js", { type: js, body: readFileSync(require.resolve("uplot/dist/uPlot.iife.min.js")) }],
    ["uplot.css", { type: css, body: readFileSync(require.resolve("uplot/dist/uPlot.min.css")) }],
  ]);
}

function send(res: ServerResponse, status: number, type: string, body: string | Buffer, headers: Record<string, string | string[]> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, "Content-Type": type, "Content-Length": String(Buffer.byteLength(body)), ...headers });
  res.end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  send(res, status, "application/json; charset=utf-8", JSON.stringify(value));
}

function sendPage(res: ServerResponse, status: number, page: Html, headers: Record<string, string | string[]> = {}): void {
  send(res, status, "text/html; charset=utf-8", page.text, headers);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new HttpError(413, "request body too large");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** The filter and paging of a list request; a malformed value is a 400 naming it. */
function listQuery(params: URLSearchParams): ListQuery {
  const form = { actor: params.get("actor")?.trim() ?? "", reason: params.get("reason")?.trim() ?? "", olderThan: params.get("older-than")?.trim() ?? "" };
  const filter: DeadLetterFilter = {};
  if (form.actor) filter.actor = form.actor;
  if (form.reason) filter.reason = form.reason;
  if (form.olderThan) {
    try {
      filter.olderThan = durationOption(form.olderThan, "older-than");
    } catch {
      throw new HttpError(400, `older than must be a duration like 90s, 15m, 2h or 7d, not "${form.olderThan}"`);
    }
  }
  const int = (name: string, fallback: number, min: number, max: number) => {
    const raw = params.get(name);
    if (raw === null || raw === "") return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new HttpError(400, `${name} must be an integer from ${min} to ${max}`);
    return n;
  };
  return { filter, form, limit: int("limit", DEFAULT_LIMIT, 1, 500), cursor: int("cursor", 0, 0, Number.MAX_SAFE_INTEGER), from: int("from", 0, 0, Number.MAX_SAFE_INTEGER) };
}

function queuedQuery(params: URLSearchParams): QueuedQuery {
  const paging = listQuery(new URLSearchParams([...params].filter(([k]) => ["limit", "cursor", "from"].includes(k))));
  return { search: params.get("search")?.trim() ?? "", limit: paging.limit, cursor: paging.cursor, from: paging.from };
}

function queuedJson(entry: QueuedEntry): Record<string, unknown> {
  return { id: entry.id, eta: entry.eta, message: entry.message?.toData(), raw: entry.message ? undefined : entry.raw };
}

function hasAny(filter: DeadLetterFilter): boolean {
  return Object.keys(filter).length > 0;
}

/**
 * The web console: an overview of every queue with charts sampled in the background, dead-letter lists (filtered,
 * paged by cursor so a page reads only what it shows), a letter's whole message, and requeue / delete / purge,
 * each confirmed on a page of its own; the schedules the store keeps (workers' and Actor resources'), with pause,
 * resume and trigger confirmed the same way. Actions need a signed-in session and a CSRF token (forms) or the token as a
 * bearer credential (the JSON API); `readOnly` or no token turns them off.
 */
export function createDashboard(options: DashboardOptions): Dashboard {
  const broker = options.broker;
  const interval = options.interval ?? 2000;
  const base = (options.basePath ?? "").replace(/\/+$/, "");
  const auth = new DashboardAuth(options.token ?? (process.env.TROUPE_DASHBOARD_TOKEN || undefined));
  const readOnly = options.readOnly ?? false;
  const monitor = new QueueMonitor(broker, options.queues ?? [], options.keep ?? 300);
  const assets = loadAssets();
  let store: DeadLetterStore | undefined;
  // RabbitMQ dead letters are read by consuming them: two browses at once would each miss what the other holds.
  let storeTurn: Promise<unknown> = Promise.resolve();
  const withStore = <T>(work: (s: DeadLetterStore) => Promise<T>): Promise<T> => {
    const run = storeTurn.then(() => work((store ??= deadLetterStore(broker))));
    storeTurn = run.catch(() => undefined);
    return run;
  };

  // Ready and delayed messages can be read in place on Redis only (RabbitMQ hands each to one consumer).
  const queued = broker instanceof RedisBroker ? new RedisQueuedMessages(broker.createClient("console"), broker.namespace, broker.displayUrl) : undefined;
  const counts = (queue: string): QueueCounts => monitor.history().at(-1)?.queues.find((q) => q.queue === queue);

  const storedResult = async (message: Message | undefined): Promise<StoredResult | undefined> => {
    if (!options.results || !message) return undefined;
    try {
      return { state: "value", value: await options.results.getResult(message) };
    } catch (err) {
      if (err instanceof ResultMissing) return { state: "missing" };
      if (err instanceof ResultFailure) return { state: "failure", type: err.origExcType, text: err.origExcMsg };
      return { state: "error", text: redactSecrets((err as Error).message) };
    }
  };

  // The store `troupe schedules` reads, opened on the first visit of the schedules page (RabbitMQ's needs a Redis).
  let schedules: Promise<ScheduleStore> | undefined;
  const scheduleStore = (): Promise<ScheduleStore> => {
    schedules ??= (async () => {
      const opened = scheduleStoreFor(broker);
      await opened.connect();
      return opened;
    })();
    schedules.catch(() => (schedules = undefined));
    return schedules;
  };
  const listSchedules = async () => {
    const store = await scheduleStore();
    const [definitions, records, paused] = await Promise.all([store.definitions(), store.records(), store.paused()]);
    return { store, rows: scheduleRows(definitions, records, paused, 3) };
  };

  let lastError: string | undefined;
  let sampling: Promise<Snapshot | undefined> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const sample = (): Promise<Snapshot | undefined> => {
    sampling ??= monitor
      .sample()
      .then(
        (snapshot) => {
          lastError = undefined;
          return snapshot;
        },
        (err: Error) => {
          lastError = redactSecrets(err.message);
          log.warn("sampling the broker failed", { err: lastError });
          return undefined;
        },
      )
      .finally(() => {
        sampling = undefined;
      });
    return sampling;
  };
  const loop = () => {
    if (closed) return;
    void sample().finally(() => {
      if (!closed) timer = setTimeout(loop, interval);
    });
  };
  loop();

  const context = (req: IncomingMessage): PageContext => {
    const ctx: PageContext = { base, brokerUrl: broker.displayUrl, mode: readOnly ? "read-only" : auth.configured ? "signed-out" : "locked" };
    const session = readOnly ? undefined : auth.session(req);
    if (session) {
      ctx.mode = "signed-in";
      ctx.csrf = auth.csrfFor(session);
    }
    return ctx;
  };

  /** Why a change may not be made by this request, or undefined when it may. */
  const refusal = (req: IncomingMessage, form: URLSearchParams | undefined): string | undefined => {
    if (readOnly) return "the dashboard is read-only";
    if (!auth.configured) return "actions are off: start the dashboard with TROUPE_DASHBOARD_TOKEN set";
    if (!sameOrigin(req)) return "cross-site request refused";
    if (auth.bearer(req)) return undefined;
    const session = auth.session(req);
    if (!session) return "sign in first (or send the token as Authorization: Bearer)";
    if (!form || !auth.csrfMatches(session, form.get("csrf") ?? undefined)) return "the form's CSRF token is missing or wrong: reload the page";
    return undefined;
  };

  const cookieAttributes = (req: IncomingMessage) => `Path=${base || "/"}; HttpOnly; SameSite=Strict${(req.socket as { encrypted?: boolean }).encrypted ? "; Secure" : ""}`;

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (options.allowedHosts && !options.allowedHosts.includes(req.headers.host ?? "")) throw new HttpError(421, "unexpected Host header");
    const url = new URL(req.url ?? "/", "http://dashboard");
    let path = url.pathname;
    if (base && (path === base || path.startsWith(`${base}/`))) path = path.slice(base.length) || "/";
    const method = req.method ?? "GET";
    const parts = path.split("/").filter(Boolean).map((p) => decodeURIComponent(p));
    const ctx = context(req);

    if (method === "GET" && path === "/healthz") return send(res, 200, "text/plain; charset=utf-8", "ok\n");
    if (method === "GET" && parts[0] === "static" && parts.length === 2) {
      const asset = assets.get(parts[1]!);
      if (!asset) throw new HttpError(404, "no such file");
      return send(res, 200, asset.type, asset.body, { "Cache-Control": "max-age=3600" });
    }
    if (method === "GET" && path === "/") {
      const snapshot = monitor.history().at(-1) ?? (await sample());
      const workers = await monitor.workers((snapshot?.queues ?? []).map((q) => q.queue)).catch(() => []);
      return sendPage(res, 200, overviewPage(ctx, snapshot, workers, { interval, error: lastError, self: broker instanceof RedisBroker ? broker.workerId : undefined }));
    }
    if (method === "GET" && path === "/api/history") {
      const since = Number(url.searchParams.get("since") ?? 0) || 0;
      return sendJson(res, 200, { interval, error: lastError, samples: monitor.history().filter((s) => s.at > since) });
    }
    if (path === "/login") return login(req, res, ctx, method);
    if (method === "POST" && path === "/logout") {
      const form = new URLSearchParams(await readBody(req));
      const session = auth.session(req);
      if (session && sameOrigin(req) && auth.csrfMatches(session, form.get("csrf") ?? undefined)) auth.close(session);
      return send(res, 303, "text/plain; charset=utf-8", "signed out\n", { Location: `${base}/`, "Set-Cookie": `${SESSION_COOKIE}=; Max-Age=0; ${cookieAttributes(req)}` });
    }

    const api = parts[0] === "api";
    const rest = api ? parts.slice(1) : parts;
    if (rest[0] === "schedules") {
      if (method === "GET" && rest.length === 1) {
        if (api) return sendJson(res, 200, (await listSchedules()).rows);
        try {
          const { store, rows } = await listSchedules();
          return sendPage(res, 200, schedulesPage(ctx, rows, { store: store.description }));
        } catch (err) {
          return sendPage(res, 200, schedulesPage(ctx, [], { error: `Reading the schedules failed: ${redactSecrets((err as Error).message)}` }));
        }
      }
      if (method === "POST" && !api && rest.length === 2 && rest[1] === "action") return scheduleAction(req, res, ctx);
      if (method === "POST" && api && rest.length === 3) return scheduleAction(req, res, ctx, { name: rest[1]!, op: rest[2]! });
    }
    if (rest[0] === "queues" && rest[2] === "dead" && rest.length >= 3) {
      const queue = qName(rest[1]!);
      const tail = rest.slice(3);
      if (method === "GET" && tail.length === 0) {
        const query = listQuery(url.searchParams);
        const page = await withStore((s) => s.list(queue, { limit: query.limit, cursor: query.cursor, filter: query.filter }));
        if (api) return sendJson(res, 200, { total: page.total, next: page.next, letters: page.letters.map(letterJson) });
        return sendPage(res, 200, deadListPage(ctx, queue, query, page, counts(queue)));
      }
      if (method === "GET" && tail.length === 1) {
        const entry = await withStore((s) => s.show(queue, tail[0]!));
        if (!entry) throw new HttpError(404, `no dead letter ${tail[0]} in ${queue}.XQ`);
        return api ? sendJson(res, 200, letterJson(entry)) : sendPage(res, 200, letterPage(ctx, queue, entry, await storedResult(entry.message)));
      }
      if (method === "POST" && api && tail.length === 1 && (tail[0] === "requeue" || tail[0] === "purge")) return apiAction(req, res, queue, tail[0]);
      if (method === "POST" && !api && tail.length === 1 && tail[0] === "action") return formAction(req, res, ctx, queue);
    }
    if (rest[0] === "queues" && rest.length === 2 && method === "GET" && !api) return send(res, 303, "text/plain; charset=utf-8", "see the ready messages\n", { Location: `${base}/queues/${encodeURIComponent(rest[1]!)}/ready` });
    if (rest[0] === "queues" && (rest[2] === "ready" || rest[2] === "delayed")) {
      const queue = qName(rest[1]!);
      const kind: QueuedKind = rest[2];
      const tail = rest.slice(3);
      if (method === "GET" && tail.length === 0) {
        const query = queuedQuery(url.searchParams);
        const page = await queued?.list(queue, kind, { cursor: query.cursor, limit: query.limit, search: query.search });
        if (api) {
          if (!page) throw new HttpError(501, "this broker cannot show waiting messages without taking them from the workers");
          return sendJson(res, 200, { total: page.total, held: page.held, next: page.next, scanned: page.scanned, messages: page.entries.map(queuedJson) });
        }
        return sendPage(res, 200, queuedListPage(ctx, queue, kind, query, page, counts(queue)));
      }
      if (method === "GET" && tail.length === 1) {
        const entry = await queued?.show(queue, kind, tail[0]!);
        if (!entry) throw new HttpError(404, `no ${kind} message ${tail[0]} waiting in ${queue} (fetched by a worker, done, or never there)`);
        return api ? sendJson(res, 200, queuedJson(entry)) : sendPage(res, 200, queuedPage(ctx, queue, kind, entry, await storedResult(entry.message)));
      }
      if (method === "POST" && tail.length === 1) return queuedAction(req, res, ctx, queue, kind, api ? tail[0]! : undefined);
    }
    throw new HttpError(404, "no such page");
  }

  async function login(req: IncomingMessage, res: ServerResponse, ctx: PageContext, method: string): Promise<void> {
    if (ctx.mode === "read-only" || ctx.mode === "locked") throw new HttpError(404, ctx.mode === "read-only" ? "the dashboard is read-only" : "no token is configured (TROUPE_DASHBOARD_TOKEN)");
    if (method === "GET") return sendPage(res, 200, loginPage(ctx));
    if (method !== "POST") throw new HttpError(405, "GET or POST");
    if (!sameOrigin(req)) throw new HttpError(403, "cross-site request refused");
    if (!auth.mayTry()) throw new HttpError(429, "too many wrong tokens: wait a minute");
    const form = new URLSearchParams(await readBody(req));
    if (!auth.tokenMatches(form.get("token") ?? undefined)) {
      auth.failed();
      log.warn("dashboard sign-in with a wrong token", { remote: req.socket.remoteAddress });
      return sendPage(res, 403, loginPage(ctx, "Wrong token."));
    }
    const session = auth.open();
    return send(res, 303, "text/plain; charset=utf-8", "signed in\n", { Location: `${base}/`, "Set-Cookie": `${SESSION_COOKIE}=${session}; Max-Age=43200; ${cookieAttributes(req)}` });
  }

  async function apiAction(req: IncomingMessage, res: ServerResponse, queue: string, op: "requeue" | "purge"): Promise<void> {
    const why = refusal(req, undefined);
    if (why) throw new HttpError(403, why);
    const text = await readBody(req);
    let body: { ids?: unknown; filter?: unknown; resetRetries?: unknown; all?: unknown };
    try {
      body = text ? (JSON.parse(text) as typeof body) : {};
    } catch {
      throw new HttpError(400, "the body must be JSON");
    }
    const ids = Array.isArray(body.ids) && body.ids.every((id) => typeof id === "string") ? (body.ids as string[]) : undefined;
    const filter = (body.filter ?? undefined) as DeadLetterFilter | undefined;
    if (!ids && !(filter && hasAny(filter)) && body.all !== true) throw new HttpError(400, "name ids, a filter, or all: true");
    if (op === "purge") {
      const deleted = await withStore((s) => s.purge(queue, { ids, filter }));
      log.info("dead letters purged from the dashboard API", { queue, deleted });
      return sendJson(res, 200, { deleted });
    }
    const result = await withStore((s) => s.requeue(queue, { ids, filter, resetRetries: body.resetRetries === true }));
    log.info("dead letters requeued from the dashboard API", { queue, requeued: result.requeued });
    return sendJson(res, 200, result);
  }

  /** A form's action: first a confirmation page, then (confirmed=1) the change and a page saying what was done. */
  async function formAction(req: IncomingMessage, res: ServerResponse, ctx: PageContext, queue: string): Promise<void> {
    const form = new URLSearchParams(await readBody(req));
    const why = refusal(req, form);
    if (why) throw new HttpError(403, why);
    const op = form.get("op") ?? "";
    const ids = form.getAll("id").filter(Boolean);
    const query = listQuery(form);
    const resetRetries = form.get("reset-retries") === "1";
    const selected = op.endsWith("-selected");
    if (!["requeue-selected", "delete-selected", "requeue-matching", "purge-matching"].includes(op)) throw new HttpError(400, `unknown action "${op}"`);
    if (selected && ids.length === 0) throw new HttpError(400, "select at least one dead letter");
    const filter = hasAny(query.filter) ? query.filter : undefined;
    const scope = selected ? `${ids.length} dead letter${ids.length === 1 ? "" : "s"}` : filter ? "every matching dead letter" : "every dead letter";
    const verb = op.startsWith("requeue") ? "Requeue" : "Delete";
    const back = { href: listHref(ctx, queue, query), label: "Back to the dead letters" };
    if (form.get("confirmed") !== "1") {
      const fields: [string, string][] = [["csrf", ctx.csrf ?? ""], ...ids.map((id): [string, string] => ["id", id]), ["actor", query.form.actor], ["reason", query.form.reason], ["older-than", query.form.olderThan]];
      if (resetRetries) fields.push(["reset-retries", "1"]);
      return sendPage(res, 200, confirmPage(ctx, queue, { op, what: `${verb} ${scope} of ${queue}${resetRetries ? " with their retries reset" : ""}`, fields }));
    }
    const target = selected ? { ids } : { filter };
    if (verb === "Requeue") {
      const result = await withStore((s) => s.requeue(queue, { ...target, resetRetries }));
      log.info("dead letters requeued from the dashboard", { queue, requeued: result.requeued });
      const missing = result.missing.length ? ` ${result.missing.length} were no longer dead: ${result.missing.join(", ")}.` : "";
      return sendPage(res, 200, messagePage(ctx, "Requeued", `Requeued ${result.requeued} dead letter${result.requeued === 1 ? "" : "s"} onto ${queue}.${missing}`, back));
    }
    const deleted = await withStore((s) => s.purge(queue, target));
    log.info("dead letters deleted from the dashboard", { queue, deleted });
    return sendPage(res, 200, messagePage(ctx, "Deleted", `Deleted ${deleted} dead letter${deleted === 1 ? "" : "s"} of ${queue}.`, back));
  }

  /**
   * Delete or run now (delayed only) waiting messages: from a form (confirmation page first), or from the API
   * (`op` from the path: POST /api/queues/Q/delayed/run-now, /api/queues/Q/ready/delete, body {ids}).
   */
  async function queuedAction(req: IncomingMessage, res: ServerResponse, ctx: PageContext, queue: string, kind: QueuedKind, apiOp: string | undefined): Promise<void> {
    const text = await readBody(req);
    const form = apiOp === undefined ? new URLSearchParams(text) : undefined;
    const why = refusal(req, form);
    if (why) throw new HttpError(403, why);
    if (!queued) throw new HttpError(501, "this broker cannot act on waiting messages");
    let op: string;
    let ids: string[];
    if (form) {
      op = form.get("op") ?? "";
      ids = form.getAll("id").filter(Boolean);
    } else {
      op = apiOp!;
      let body: { ids?: unknown };
      try {
        body = text ? (JSON.parse(text) as typeof body) : {};
      } catch {
        throw new HttpError(400, "the body must be JSON");
      }
      ids = Array.isArray(body.ids) ? body.ids.filter((id): id is string => typeof id === "string") : [];
    }
    if (op !== "delete" && !(op === "run-now" && kind === "delayed")) throw new HttpError(400, `unknown action "${op}" on ${kind} messages`);
    if (ids.length === 0) throw new HttpError(400, "select at least one message");
    const scope = `${ids.length} ${kind} message${ids.length === 1 ? "" : "s"}`;
    if (form && form.get("confirmed") !== "1") {
      const fields: [string, string][] = [["csrf", ctx.csrf ?? ""], ...ids.map((id): [string, string] => ["id", id])];
      return sendPage(res, 200, confirmPage(ctx, queue, { op, what: `${op === "delete" ? "Delete" : "Run now"} ${scope} of ${queue}`, fields }, kind));
    }
    const done = op === "delete" ? await queued.delete(queue, kind, ids) : await queued.runNow(queue, ids);
    const missing = ids.filter((id) => !done.includes(id));
    log.info(`${kind} messages ${op === "delete" ? "deleted" : "run now"} from the dashboard`, { queue, count: done.length });
    if (!form) return sendJson(res, 200, { done, missing });
    const note = missing.length ? ` ${missing.length} were no longer waiting (a worker had fetched them, or they were gone): ${missing.join(", ")}.` : "";
    const said = op === "delete" ? `Deleted ${done.length} of ${scope} of ${queue}.` : `Moved ${done.length} of ${scope} to the end of ${queue}, to run as soon as a worker is free.`;
    return sendPage(
      res,
      200,
      messagePage(ctx, op === "delete" ? "Deleted" : "Run now", `${said}${note}`, { href: `${base}/queues/${encodeURIComponent(queue)}/${kind}`, label: `Back to the ${kind} messages` }),
    );
  }

  /**
   * Pause, resume or trigger one schedule, as `troupe schedules` does: from a form (a confirmation page first), or
   * from the API (POST /api/schedules/NAME/pause|resume|trigger with the bearer token).
   */
  async function scheduleAction(req: IncomingMessage, res: ServerResponse, ctx: PageContext, fromApi?: { name: string; op: string }): Promise<void> {
    const form = fromApi ? undefined : new URLSearchParams(await readBody(req));
    const why = refusal(req, form);
    if (why) throw new HttpError(403, why);
    const op = fromApi?.op ?? form!.get("op") ?? "";
    const name = fromApi?.name ?? form!.get("name") ?? "";
    if (!["pause", "resume", "trigger"].includes(op)) throw new HttpError(400, `unknown schedule action "${op}": pause, resume or trigger`);
    const store = await scheduleStore();
    const definition = (await store.definitions()).get(name);
    if (!definition) throw new HttpError(404, `no schedule named "${name}" in ${store.description}`);
    const verb = { pause: "Pause", resume: "Resume", trigger: "Trigger" }[op]!;
    if (form && form.get("confirmed") !== "1") {
      const what = op === "trigger" ? `Trigger ${name} now (one message of ${definition.actor} on ${definition.queue}, outside its ticks)` : `${verb} ${name} on every worker`;
      return sendPage(res, 200, scheduleConfirmPage(ctx, { op, what, fields: [["csrf", ctx.csrf ?? ""], ["name", name]] }));
    }
    let said: string;
    let result: Record<string, unknown>;
    if (op === "trigger") {
      const sent = await broker.enqueue(triggerMessage(definition));
      said = `Enqueued message ${sent.messageId} of ${definition.actor} on ${definition.queue}.`;
      result = { messageId: sent.messageId };
    } else {
      const changed = await store.setPaused(name, op === "pause");
      said = changed ? `${name} ${op === "pause" ? "paused: no worker fires its ticks until it is resumed" : "resumed: it fires from its next tick"}.` : `${name} ${op === "pause" ? "was already paused" : "was not paused"}.`;
      result = { changed };
    }
    log.info(`schedule ${op} from the dashboard`, { schedule: name, ...result });
    if (!form) return sendJson(res, 200, result);
    return sendPage(res, 200, messagePage(ctx, verb === "Trigger" ? "Triggered" : `${verb}d`, said, { href: `${base}/schedules`, label: "Back to the schedules" }));
  }

  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    route(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      const text = redactSecrets(err instanceof Error ? err.message : String(err));
      if (status === 500) log.error("dashboard request failed", { url: req.url, err: text });
      if (res.headersSent) return void res.destroy();
      const wantsJson = (req.url ?? "").includes("/api/") || !(req.headers.accept ?? "").includes("text/html");
      if (wantsJson) return sendJson(res, status, { error: text });
      sendPage(res, status, messagePage(context(req), `${status}`, text, { href: `${base}/`, label: "Back to the queues" }));
    });
  };

  return {
    handler,
    monitor,
    async close() {
      closed = true;
      clearTimeout(timer);
      await sampling;
      await storeTurn;
      await store?.close();
      await queued?.close();
      await (await schedules?.catch(() => undefined))?.close();
      await monitor.close();
    },
  };
}
