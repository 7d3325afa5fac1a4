import { formatAge } from "../cli/duration.js";
import type { QueuedEntry, QueuedKind, QueuedPage } from "../brokers/redis/queued.js";
import type { DeadLetterEntry, DeadLetterFilter, DeadLetterPage } from "../dead-letters/types.js";
import type { Message } from "../message.js";
import { iso, type ScheduleRow } from "../schedules/listing.js";
import { html, type Html } from "./html.js";
import type { Snapshot, WorkerRow } from "./monitor.js";

/** What every page needs to know about the request it answers. */
export interface PageContext {
  /** Where the dashboard is mounted ("" at the root), prefixed to every link. */
  base: string;
  brokerUrl: string;
  /** "read-only": started so; "locked": no token configured; "signed-out" / "signed-in": a token is configured. */
  mode: "read-only" | "locked" | "signed-out" | "signed-in";
  /** The session's CSRF token, when signed in. */
  csrf?: string;
}

/** The filter and paging of a dead-letter list, as its query string carries them. */
export interface ListQuery {
  filter: DeadLetterFilter;
  /** The filter as the user typed it (older-than as text), to fill the form and the links back in. */
  form: { actor: string; reason: string; olderThan: string };
  limit: number;
  cursor: number;
  /** How many matching letters came before this page (for "41–60"); carried along by the next-page link. */
  from: number;
}

const MODE_TEXT: Record<PageContext["mode"], string> = {
  "read-only": "read-only",
  locked: "actions off: no TROUPE_DASHBOARD_TOKEN",
  "signed-out": "sign in to act",
  "signed-in": "signed in",
};

export function layout(ctx: PageContext, title: string, body: Html): Html {
  const b = ctx.base;
  const account =
    ctx.mode === "signed-in"
      ? html`<form method="post" action="${b}/logout" class="inline"><input type="hidden" name="csrf" value="${ctx.csrf}"><button class="link">sign out</button></form>`
      : ctx.mode === "signed-out"
        ? html`<a href="${b}/login">sign in</a>`
        : "";
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${title} · Troupe</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${b}/static/uplot.css">
<link rel="stylesheet" href="${b}/static/dashboard.css">
<script src="${b}/static/uplot.js" defer></script>
<script src="${b}/static/dashboard.js" defer></script>
</head>
<body>
<header>
  <a class="brand" href="${b}/">Troupe</a>
  <a href="${b}/schedules">Schedules</a>
  <span class="broker" title="broker">${ctx.brokerUrl}</span>
  <span class="mode mode-${ctx.mode}">${MODE_TEXT[ctx.mode]}</span>
  ${account}
</header>
<main>
${body}
</main>
</body>
</html>`;
}

function rate(value: number | undefined): string {
  if (value === undefined) return "–";
  return value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

export type Section = "ready" | "delayed" | "dead";

/** A queue's page of one section: its ready, delayed or dead-lettered messages. */
function queueLink(ctx: PageContext, queue: string, section: Section = "dead"): string {
  return `${ctx.base}/queues/${encodeURIComponent(queue)}/${section}`;
}

/** Counts for the tabs of a queue's pages, from the latest sample (absent before the first). */
export type QueueCounts = { ready: number; delayed: number; dead: number } | undefined;

function tabs(ctx: PageContext, queue: string, current: Section, counts: QueueCounts): Html {
  const tab = (section: Section, label: string) =>
    html`<a class="tab${section === current ? " current" : ""}" href="${queueLink(ctx, queue, section)}">${label}${counts ? html` <span class="count">${counts[section]}</span>` : ""}</a>`;
  return html`<nav class="tabs">${tab("ready", "Ready")}${tab("delayed", "Delayed")}${tab("dead", "Dead letters")}</nav>`;
}

export function overviewPage(ctx: PageContext, snapshot: Snapshot | undefined, workers: WorkerRow[] | undefined, options: { interval: number; error?: string; self?: string }): Html {
  const rows = snapshot?.queues ?? [];
  const table = rows.length
    ? html`<table class="queues">
<thead><tr><th>Queue</th><th class="num">Ready</th><th class="num">Delayed</th><th class="num">In flight</th><th class="num">Dead</th><th class="num">Done/s</th><th class="num">Dead/s</th></tr></thead>
<tbody>${rows.map(
        (q) => html`<tr data-queue="${q.queue}">
<td><a href="${queueLink(ctx, q.queue, "ready")}">${q.queue}</a></td>
<td class="num" data-field="ready"><a href="${queueLink(ctx, q.queue, "ready")}">${q.ready}</a></td><td class="num" data-field="delayed"><a href="${queueLink(ctx, q.queue, "delayed")}">${q.delayed}</a></td><td class="num" data-field="inFlight">${q.inFlight}</td>
<td class="num${q.dead > 0 ? " bad" : ""}" data-field="dead"><a href="${queueLink(ctx, q.queue)}">${q.dead}</a></td>
<td class="num" data-field="donePerSec">${rate(q.donePerSec)}</td><td class="num" data-field="deadPerSec">${rate(q.deadPerSec)}</td>
</tr>`,
      )}</tbody></table>`
    : html`<p class="empty">No queue found yet${snapshot ? "" : " (the first sample is on its way)"}.</p>`;
  const noDone = rows.length > 0 && rows.every((q) => q.donePerSec === undefined);
  return layout(
    ctx,
    "Queues",
    html`${options.error ? html`<p class="banner error">Reading the broker failed: ${options.error}</p>` : ""}
${snapshot?.blindSpots ? html`<p class="banner warn">${snapshot.blindSpots}</p>` : ""}
<h1>Queues <small>sampled every ${options.interval / 1000}s${snapshot ? html`, last <time data-at="${snapshot.at}">${new Date(snapshot.at).toISOString()}</time>` : ""}</small></h1>
${table}
${noDone ? html`<p class="note">Done/s needs a broker that counts acks (RabbitMQ with its management API); the Redis layout keeps no count.</p>` : ""}
<section id="charts" data-history="${ctx.base}/api/history" data-interval="${options.interval}">
  <figure><figcaption>Ready, per queue</figcaption><div class="chart" data-series="ready"></div></figure>
  <figure><figcaption>Dead letters, per queue</figcaption><div class="chart" data-series="dead"></div></figure>
  <figure><figcaption>Throughput, all queues (per second)</figcaption><div class="chart" data-series="throughput"></div></figure>
</section>
<h2>Workers</h2>
${workersTable(workers, options.self)}`,
  );
}

/** `self`: the dashboard's own heartbeat id (Redis), marked as such. */
function workersTable(workers: WorkerRow[] | undefined, self?: string): Html {
  if (workers === undefined) return html`<p class="note">RabbitMQ does not tell consumers over AMQP: set TROUPE_RABBITMQ_MANAGEMENT_URL to list them.</p>`;
  if (workers.length === 0) return html`<p class="empty">No live worker.</p>`;
  const now = Date.now();
  const note = self ? html`<p class="note">On Redis every broker instance heartbeats — workers, producers, this dashboard — so an idle worker and a producer look alike; a worker holding messages shows them per queue.</p>` : "";
  return html`${note}<table class="workers"><thead><tr><th>Worker</th><th>Last heartbeat</th><th>Queues (in flight)</th></tr></thead><tbody>${workers.map(
    (w) => html`<tr><td class="mono">${w.id}${w.id === self ? html` <span class="chip">this dashboard</span>` : ""}</td><td>${w.lastSeen === undefined ? "–" : `${formatAge(now - w.lastSeen)} ago`}</td><td>${w.queues.map((q) => html`<span class="chip">${q.queue}${q.inFlight === undefined ? "" : ` (${q.inFlight})`}</span> `)}</td></tr>`,
  )}</tbody></table>`;
}

/** The query string of a list with this filter, at `cursor` (the first page without one). */
export function listHref(ctx: PageContext, queue: string, query: ListQuery, cursor?: number, from?: number): string {
  const params = new URLSearchParams();
  if (query.form.actor) params.set("actor", query.form.actor);
  if (query.form.reason) params.set("reason", query.form.reason);
  if (query.form.olderThan) params.set("older-than", query.form.olderThan);
  if (query.limit !== DEFAULT_LIMIT) params.set("limit", String(query.limit));
  if (cursor !== undefined) params.set("cursor", String(cursor));
  if (from) params.set("from", String(from));
  const text = params.toString();
  return `${queueLink(ctx, queue)}${text ? `?${text}` : ""}`;
}

export const DEFAULT_LIMIT = 25;

function preview(value: unknown, width = 80): string {
  const text = JSON.stringify(value) ?? "";
  return text.length > width ? `${text.slice(0, width - 1)}…` : text;
}

function canAct(ctx: PageContext): boolean {
  return ctx.mode === "signed-in";
}

function filterFields(query: ListQuery): Html {
  return html`<input type="hidden" name="actor" value="${query.form.actor}"><input type="hidden" name="reason" value="${query.form.reason}"><input type="hidden" name="older-than" value="${query.form.olderThan}">`;
}

export function deadListPage(ctx: PageContext, queue: string, query: ListQuery, page: DeadLetterPage, counts: QueueCounts): Html {
  const now = Date.now();
  const acting = canAct(ctx);
  const filtered = Boolean(query.form.actor || query.form.reason || query.form.olderThan);
  const first = page.letters.length ? query.from + 1 : 0;
  const rows = page.letters.map(
    (e) => html`<tr>
${acting ? html`<td><input type="checkbox" name="id" value="${e.id}" aria-label="select ${e.id}"></td>` : ""}
<td class="mono"><a href="${queueLink(ctx, queue)}/${encodeURIComponent(e.id)}">${e.id}</a></td>
<td>${e.message?.actorName ?? html`<em>undecodable</em>`}</td>
<td>${e.deadAt === undefined ? "?" : formatAge(now - e.deadAt)}</td>
<td class="num">${String(e.message?.options.retries ?? 0)}</td>
<td class="mono args">${e.message ? preview(e.message.args) : preview(e.raw)}</td>
<td class="reason">${e.reason ?? ""}</td>
</tr>`,
  );
  const actions = acting
    ? html`<div class="actions">
<input type="hidden" name="csrf" value="${ctx.csrf}">${filterFields(query)}
<label><input type="checkbox" name="reset-retries" value="1"> reset retries</label>
<button name="op" value="requeue-selected">Requeue selected</button>
<button name="op" value="delete-selected" class="danger">Delete selected</button>
<button name="op" value="requeue-matching">Requeue all ${filtered ? "matching" : ""}</button>
<button name="op" value="purge-matching" class="danger">Purge all ${filtered ? "matching" : ""}</button>
</div>`
    : "";
  const table = page.letters.length
    ? html`<table class="letters"><thead><tr>${acting ? html`<th></th>` : ""}<th>Id</th><th>Actor</th><th>Age</th><th class="num">Retries</th><th>Args</th><th>Reason</th></tr></thead><tbody>${rows}</tbody></table>`
    : html`<p class="empty">No dead letter${filtered ? " matches" : ""}.</p>`;
  const next = page.next === undefined ? "" : html`<a class="button" href="${listHref(ctx, queue, query, page.next, query.from + page.letters.length)}">Next page →</a>`;
  const firstLink = query.cursor > 0 ? html`<a class="button" href="${listHref(ctx, queue, query)}">← First page</a>` : "";
  return layout(
    ctx,
    `Dead letters of ${queue}`,
    html`<nav class="crumbs"><a href="${ctx.base}/">Queues</a> / ${queue} / dead letters</nav>
<h1>Dead letters of <span class="mono">${queue}</span> <small>${page.total} in ${queue}.XQ</small></h1>
${tabs(ctx, queue, "dead", counts)}
<form method="get" action="${queueLink(ctx, queue)}" class="filters">
<label>Actor <input name="actor" value="${query.form.actor}" placeholder="exact name"></label>
<label>Reason contains <input name="reason" value="${query.form.reason}" placeholder="text"></label>
<label>Older than <input name="older-than" value="${query.form.olderThan}" placeholder="15m, 2h, 7d" size="8"></label>
<label>Per page <input name="limit" value="${query.limit}" size="4" inputmode="numeric"></label>
<button>Filter</button> ${filtered ? html`<a href="${queueLink(ctx, queue)}">clear</a>` : ""}
</form>
<form method="post" action="${queueLink(ctx, queue)}/action">
${actions}
${table}
</form>
<p class="paging">${page.letters.length ? `${first}–${query.from + page.letters.length} shown` : ""} ${firstLink} ${next}</p>`,
  );
}

export function letterPage(ctx: PageContext, queue: string, entry: DeadLetterEntry, result?: StoredResult): Html {
  const m = entry.message;
  const fields: [string, Html | string][] = [
    ["Id", entry.id],
    ["Dead since", entry.deadAt === undefined ? "unknown" : `${new Date(entry.deadAt).toISOString()} (${formatAge(Date.now() - entry.deadAt)} ago)`],
    ["Reason", entry.reason ?? "(none recorded)"],
  ];
  fields.push(...messageFields(m));
  const actions =
    canAct(ctx)
      ? html`<form method="post" action="${queueLink(ctx, queue)}/action" class="actions">
<input type="hidden" name="csrf" value="${ctx.csrf}"><input type="hidden" name="id" value="${entry.id}">
<label><input type="checkbox" name="reset-retries" value="1"> reset retries</label>
<button name="op" value="requeue-selected">Requeue</button>
<button name="op" value="delete-selected" class="danger">Delete</button>
</form>`
      : "";
  return layout(
    ctx,
    `Dead letter ${entry.id}`,
    html`<nav class="crumbs"><a href="${ctx.base}/">Queues</a> / <a href="${queueLink(ctx, queue)}">${queue}</a> / ${entry.id}</nav>
<h1>Dead letter <span class="mono">${entry.id}</span></h1>
${actions}
<table class="fields"><tbody>${fields.map(([k, v]) => html`<tr><th>${k}</th><td>${v}</td></tr>`)}</tbody></table>
${resultSection(result)}
${messageDetails(m, entry.raw)}`,
  );
}

/** What the results backend holds for a message; undefined when no backend is configured. */
export type StoredResult = { state: "value"; value: unknown } | { state: "failure"; type: string; text: string } | { state: "missing" } | { state: "error"; text: string };

function resultSection(result: StoredResult | undefined): Html | string {
  if (!result) return "";
  const body =
    result.state === "value"
      ? html`<pre class="json" id="result">${JSON.stringify(result.value, null, 2)}</pre>`
      : result.state === "failure"
        ? html`<p class="banner error" id="result">The actor raised ${result.type}: ${result.text}</p>`
        : result.state === "missing"
          ? html`<p class="note" id="result">None stored (the actor does not store results, the result expired, or it has not run).</p>`
          : html`<p class="banner warn" id="result">Reading the results backend failed: ${result.text}</p>`;
  return html`<h2>Stored result</h2>${body}`;
}

/** Identity fields of a decoded message, for the tables of message pages. */
function messageFields(m: Message | undefined): [string, string][] {
  if (!m) return [];
  return [
    ["Actor", m.actorName],
    ["Queue", m.queueName],
    ["Message id", m.messageId],
    ["Sent", new Date(m.messageTimestamp).toISOString()],
    ["Retries", String(m.options.retries ?? 0)],
  ];
}

/** The whole message below a message page's fields: args, kwargs, options, Dramatiq's traceback and the body as stored. */
function messageDetails(m: Message | undefined, raw: string): Html {
  const traceback = m?.options.traceback;
  return html`${m
    ? html`<h2>Args</h2><pre class="json" id="args">${JSON.stringify(m.args, null, 2)}</pre>
<h2>Kwargs</h2><pre class="json">${JSON.stringify(m.kwargs, null, 2)}</pre>
<h2>Options</h2><pre class="json">${JSON.stringify(m.options, null, 2)}</pre>`
    : html`<p class="banner warn">The body does not decode as a Dramatiq message.</p>`}
${typeof traceback === "string" ? html`<h2>Traceback</h2><pre class="traceback">${traceback}</pre>` : ""}
<details><summary>Body as stored</summary><pre class="raw">${raw}</pre></details>`;
}

export interface Confirmation {
  op: string;
  /** What will happen, in words. */
  what: string;
  fields: [string, string][];
}

/** The page between an action's button and the action: what will happen, and a form that repeats the request confirmed. */
export function confirmPage(ctx: PageContext, queue: string, confirmation: Confirmation, section: Section = "dead"): Html {
  const href = queueLink(ctx, queue, section);
  return confirmationPage(ctx, html`<a href="${ctx.base}/">Queues</a> / <a href="${href}">${queue}</a>`, `${href}/action`, href, confirmation);
}

function confirmationPage(ctx: PageContext, crumbs: Html, action: string, cancel: string, confirmation: Confirmation): Html {
  return layout(
    ctx,
    "Confirm",
    html`<nav class="crumbs">${crumbs}</nav>
<h1>${confirmation.what}?</h1>
<form method="post" action="${action}" class="confirm">
${confirmation.fields.map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">`)}
<input type="hidden" name="confirmed" value="1">
<button name="op" value="${confirmation.op}" class="${confirmation.op.startsWith("delete") || confirmation.op.startsWith("purge") ? "danger" : ""}">Yes, ${confirmation.what.toLowerCase()}</button>
<a class="button" href="${cancel}">Cancel</a>
</form>`,
  );
}

/** A schedule's action (pause, resume, trigger), confirmed like the queues' actions. */
export function scheduleConfirmPage(ctx: PageContext, confirmation: Confirmation): Html {
  const href = `${ctx.base}/schedules`;
  return confirmationPage(ctx, html`<a href="${href}">Schedules</a>`, `${href}/action`, href, confirmation);
}

/**
 * Every schedule the store knows (declared in code by workers, or by Actor resources through the operator), as
 * `troupe schedules` lists them: next fire times, the last fired tick and by whom, paused or active. Signed in,
 * each row has pause or resume and trigger, each confirmed on a page of its own.
 */
export function schedulesPage(ctx: PageContext, rows: readonly ScheduleRow[], options: { store?: string; error?: string; now?: number }): Html {
  const now = options.now ?? Date.now();
  const acting = ctx.mode === "signed-in";
  const when = (at: number, future: boolean) => html`<time data-at="${at}" title="${iso(at)}">${iso(at)}</time> <small>(${future ? `in ${formatAge(at - now)}` : `${formatAge(now - at)} ago`})</small>`;
  const button = (row: ScheduleRow, op: string, label: string) =>
    html`<form method="post" action="${ctx.base}/schedules/action" class="inline"><input type="hidden" name="csrf" value="${ctx.csrf}"><input type="hidden" name="name" value="${row.name}"><button name="op" value="${op}">${label}</button></form>`;
  const table = rows.length
    ? html`<table class="schedules">
<thead><tr><th>Schedule</th><th>Actor</th><th>Queue</th><th>When</th><th>Next</th><th>Last fired</th><th>State</th><th>Declared by</th>${acting ? html`<th></th>` : ""}</tr></thead>
<tbody>${rows.map(
        (r) => html`<tr data-schedule="${r.name}">
<td class="mono">${r.name}</td><td>${r.actor}</td><td><a href="${queueLink(ctx, r.queue, "ready")}">${r.queue}</a></td><td class="mono">${r.when}</td>
<td data-field="next">${r.next.length ? r.next.map((at, i) => html`${i ? html`<br>` : ""}${when(Date.parse(at), true)}`) : "never"}</td>
<td data-field="last">${r.lastFired ? html`${when(r.lastFired.tick, false)}<br><small>+${r.lastFired.lateMs} ms by <span class="mono">${r.lastFired.by}</span></small>` : "–"}</td>
<td data-field="state">${r.paused ? html`<span class="chip warn">paused</span> <small>${formatAge(now - r.paused.since)} ago by <span class="mono">${r.paused.by}</span></small>` : html`<span class="chip">active</span>`}</td>
<td><span class="mono">${r.declaredBy}</span><br><small>${r.declaredAt}</small></td>
${acting ? html`<td class="actions">${r.paused ? button(r, "resume", "Resume") : button(r, "pause", "Pause")}${button(r, "trigger", "Trigger now")}</td>` : ""}
</tr>`,
      )}</tbody></table>`
    : html`<p class="empty">No schedule in the store yet: each worker with schedules, and the operator for Actor schedules, writes its own when it starts.</p>`;
  return layout(
    ctx,
    "Schedules",
    html`<nav class="crumbs"><a href="${ctx.base}/">Queues</a></nav>
${options.error ? html`<p class="banner error">${options.error}</p>` : ""}
<h1>Schedules${options.store ? html` <small>from ${options.store}</small>` : ""}</h1>
${table}
<p class="note">Each tick is enqueued once across every worker and the operator: the store elects one firer per tick. A paused schedule's ticks are skipped, not fired late on resume.</p>`,
  );
}

/** The search and paging of a ready or delayed list. */
export interface QueuedQuery {
  search: string;
  limit: number;
  cursor: number;
  from: number;
}

function queuedHref(ctx: PageContext, queue: string, kind: QueuedKind, query: QueuedQuery, cursor?: number, from?: number): string {
  const params = new URLSearchParams();
  if (query.search) params.set("search", query.search);
  if (query.limit !== DEFAULT_LIMIT) params.set("limit", String(query.limit));
  if (cursor !== undefined) params.set("cursor", String(cursor));
  if (from) params.set("from", String(from));
  const text = params.toString();
  return `${queueLink(ctx, queue, kind)}${text ? `?${text}` : ""}`;
}

function eta(value: number | undefined, now: number): string {
  if (value === undefined) return "–";
  return value <= now ? `due ${formatAge(now - value)} ago` : `in ${formatAge(value - now)}`;
}

/**
 * Ready or delayed messages of a queue, next to run first, or a note where the broker cannot show them (RabbitMQ:
 * a message on a queue can only be read by taking it from the workers).
 */
export function queuedListPage(ctx: PageContext, queue: string, kind: QueuedKind, query: QueuedQuery, page: QueuedPage | undefined, counts: QueueCounts): Html {
  const now = Date.now();
  const label = kind === "ready" ? "Ready messages" : "Delayed messages";
  const header = html`<nav class="crumbs"><a href="${ctx.base}/">Queues</a> / ${queue} / ${kind}</nav>
<h1>${label} of <span class="mono">${queue}</span>${page ? html` <small>${page.total} waiting in ${kind === "ready" ? queue : `${queue}.DQ`}</small>` : ""}</h1>
${tabs(ctx, queue, kind, counts)}`;
  if (!page) {
    return layout(
      ctx,
      `${label} of ${queue}`,
      html`${header}<p class="note">This broker cannot show waiting messages without taking them from the workers (RabbitMQ hands a message to one consumer at a time). The counts are on the queues page; RabbitMQ's management UI can peek at a queue ("Get messages" with requeue), at the cost of redelivering what it shows.</p>`,
    );
  }
  const acting = canAct(ctx);
  const rows = page.entries.map(
    (e) => html`<tr>
${acting ? html`<td><input type="checkbox" name="id" value="${e.id}" aria-label="select ${e.id}"></td>` : ""}
<td class="mono"><a href="${queueLink(ctx, queue, kind)}/${encodeURIComponent(e.id)}">${e.id}</a></td>
<td>${e.message?.actorName ?? html`<em>undecodable</em>`}</td>
<td>${e.message ? `${formatAge(now - e.message.messageTimestamp)} ago` : "?"}</td>
${kind === "delayed" ? html`<td>${eta(e.eta, now)}</td>` : ""}
<td class="mono args">${e.message ? preview(e.message.args) : preview(e.raw)}</td>
</tr>`,
  );
  const actions = acting
    ? html`<div class="actions"><input type="hidden" name="csrf" value="${ctx.csrf}">
${kind === "delayed" ? html`<button name="op" value="run-now">Run selected now</button>` : ""}
<button name="op" value="delete" class="danger">Delete selected</button></div>`
    : "";
  const table = page.entries.length
    ? html`<table class="messages"><thead><tr>${acting ? html`<th></th>` : ""}<th>Id</th><th>Actor</th><th>Sent</th>${kind === "delayed" ? html`<th>ETA</th>` : ""}<th>Args</th></tr></thead><tbody>${rows}</tbody></table>`
    : html`<p class="empty">${query.search ? `Nothing matches "${query.search}"${page.scanned ? ` in the ${page.scanned} messages read` : ""}.` : "No message waiting."}</p>`;
  const next = page.next === undefined ? "" : html`<a class="button" href="${queuedHref(ctx, queue, kind, query, page.next, query.from + page.entries.length)}">${page.entries.length || !query.search ? "Next page →" : "Search further →"}</a>`;
  const firstLink = query.cursor > 0 ? html`<a class="button" href="${queuedHref(ctx, queue, kind, query)}">← First page</a>` : "";
  return layout(
    ctx,
    `${label} of ${queue}`,
    html`${header}
${page.held ? html`<p class="note">${page.held} more delayed message${page.held === 1 ? " is" : "s are"} held by workers until due (fetched, so not listed and not movable).</p>` : ""}
<form method="get" action="${queueLink(ctx, queue, kind)}" class="filters">
<label>Message id, Redis id or actor <input name="search" value="${query.search}" size="36"></label>
<label>Per page <input name="limit" value="${query.limit}" size="4" inputmode="numeric"></label>
<button>Search</button> ${query.search ? html`<a href="${queueLink(ctx, queue, kind)}">clear</a>` : ""}
</form>
<form method="post" action="${queueLink(ctx, queue, kind)}/action">
${actions}
${table}
</form>
<p class="paging">${page.entries.length ? `${query.from + 1}–${query.from + page.entries.length} shown` : ""} ${firstLink} ${next}</p>`,
  );
}

export function queuedPage(ctx: PageContext, queue: string, kind: QueuedKind, entry: QueuedEntry, result?: StoredResult): Html {
  const fields: [string, string][] = [["Redis id", entry.id], ...(kind === "delayed" ? [["ETA", entry.eta === undefined ? "none" : `${new Date(entry.eta).toISOString()} (${eta(entry.eta, Date.now())})`] as [string, string]] : []), ...messageFields(entry.message)];
  const actions = canAct(ctx)
    ? html`<form method="post" action="${queueLink(ctx, queue, kind)}/action" class="actions">
<input type="hidden" name="csrf" value="${ctx.csrf}"><input type="hidden" name="id" value="${entry.id}">
${kind === "delayed" ? html`<button name="op" value="run-now">Run now</button>` : ""}
<button name="op" value="delete" class="danger">Delete</button>
</form>`
    : "";
  return layout(
    ctx,
    `Message ${entry.id}`,
    html`<nav class="crumbs"><a href="${ctx.base}/">Queues</a> / <a href="${queueLink(ctx, queue, kind)}">${queue}</a> / ${kind} / ${entry.id}</nav>
<h1>${kind === "ready" ? "Ready" : "Delayed"} message <span class="mono">${entry.id}</span></h1>
${actions}
<table class="fields"><tbody>${fields.map(([k, v]) => html`<tr><th>${k}</th><td>${v}</td></tr>`)}</tbody></table>
${resultSection(result)}
${messageDetails(entry.message, entry.raw)}`,
  );
}

export function messagePage(ctx: PageContext, title: string, text: string, back?: { href: string; label: string }): Html {
  return layout(ctx, title, html`<h1>${title}</h1><p class="message">${text}</p>${back ? html`<p><a class="button" href="${back.href}">${back.label}</a></p>` : ""}`);
}

export function loginPage(ctx: PageContext, error?: string): Html {
  return layout(
    ctx,
    "Sign in",
    html`<h1>Sign in</h1>
${error ? html`<p class="banner error">${error}</p>` : ""}
<form method="post" action="${ctx.base}/login" class="login">
<label>Dashboard token <input type="password" name="token" autocomplete="current-password" autofocus required></label>
<button>Sign in</button>
</form>
<p class="note">The token is the value of TROUPE_DASHBOARD_TOKEN the dashboard was started with.</p>`,
  );
}
