import { createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";

/** How long a browser stays signed in. */
const SESSION_MS = 12 * 3_600_000;
/** Wrong tokens accepted per minute before sign-in answers 429 (guessing a 16+ character token stays hopeless). */
const FAILURES_PER_MINUTE = 10;
/** Sessions kept at most; the oldest is dropped beyond that, so a flood of sign-ins cannot grow memory. */
const MAX_SESSIONS = 1000;

export const SESSION_COOKIE = "troupe_dashboard_session";

function digest(value: string): Buffer {
  return createHash("sha256").update(value).digest();
}

/**
 * Who may change queues. Browsers sign in with the token once and get a session cookie (HttpOnly, SameSite=Strict);
 * every form that changes something carries a CSRF token derived from that session with a key only this process
 * knows. Scripts send the token itself as `Authorization: Bearer …`, which a cross-site page cannot set. Without a
 * token configured nobody can act.
 */
export class DashboardAuth {
  private readonly key = randomBytes(32);
  private readonly expected: Buffer | undefined;
  /** Session id → expiry (ms since the epoch), oldest first. */
  private readonly sessions = new Map<string, number>();
  private failures: number[] = [];

  constructor(token: string | undefined) {
    this.expected = token ? digest(token) : undefined;
  }

  get configured(): boolean {
    return this.expected !== undefined;
  }

  /** Compares digests, so the time taken says nothing about the token. */
  tokenMatches(candidate: string | undefined): boolean {
    return this.expected !== undefined && candidate !== undefined && timingSafeEqual(digest(candidate), this.expected);
  }

  /** Whether another sign-in attempt may be checked now (too many wrong tokens in the last minute: no). */
  mayTry(now = Date.now()): boolean {
    this.failures = this.failures.filter((at) => now - at < 60_000);
    return this.failures.length < FAILURES_PER_MINUTE;
  }

  failed(now = Date.now()): void {
    this.failures.push(now);
  }

  /** A new session; returns its id (the cookie's value). */
  open(now = Date.now()): string {
    const id = randomBytes(24).toString("base64url");
    this.sessions.set(id, now + SESSION_MS);
    if (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    return id;
  }

  close(id: string | undefined): void {
    if (id) this.sessions.delete(id);
  }

  /** The request's live session id, if it has one. */
  session(req: IncomingMessage, now = Date.now()): string | undefined {
    const id = cookie(req, SESSION_COOKIE);
    if (id === undefined) return undefined;
    const expiry = this.sessions.get(id);
    if (expiry === undefined) return undefined;
    if (expiry < now) {
      this.sessions.delete(id);
      return undefined;
    }
    return id;
  }

  csrfFor(session: string): string {
    return createHmac("sha256", this.key).update(session).digest("base64url");
  }

  csrfMatches(session: string, candidate: string | undefined): boolean {
    return candidate !== undefined && timingSafeEqual(digest(candidate), digest(this.csrfFor(session)));
  }

  /** Whether the request carries the token as a bearer credential. */
  bearer(req: IncomingMessage): boolean {
    const header = req.headers.authorization;
    const match = header ? /^Bearer\s+(.+)$/i.exec(header) : null;
    return match !== null && this.tokenMatches(match[1]!.trim());
  }
}

export function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/**
 * Whether a POST comes from a page of this dashboard, as far as the browser says: `Sec-Fetch-Site` (all current
 * browsers) must not be cross-site, and an `Origin` must name this host. A request with neither (curl, a script)
 * passes here and is judged by its credentials.
 */
export function sameOrigin(req: IncomingMessage): boolean {
  const site = req.headers["sec-fetch-site"];
  if (site !== undefined && site !== "same-origin" && site !== "none") return false;
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  if (origin === "null") return false;
  try {
    return new URL(origin).host === req.headers.host;
  } catch {
    return false;
  }
}
