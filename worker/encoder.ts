import { DecodeError } from "./errors.js";

/** Any value that survives a JSON round trip. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const NON_ASCII = /[\u0080-\uffff]/g;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * A piece of JSON text that `encodeJson` writes verbatim: the wire text of a value Troupe read and passes on
 * unchanged, so that what Python wrote (integers beyond 2^53, `1.0`, `-0.0`, `NaN`) leaves as it came in.
 * Anywhere else (`JSON.stringify`, logs) it stands for its decoded value.
 */
export class RawJson {
  constructor(readonly text: string) {}

  toJSON(): unknown {
    if (fragments === undefined) return decodeJson(this.text);
    fragments.push(this.text);
    return FRAGMENT_MARK + (fragments.length - 1);
  }
}

/** The fragments of the `encodeJson` call in progress; a string marker stands for each in `JSON.stringify`'s output. */
let fragments: string[] | undefined;
/** Random per process, so that no string of a value's own is taken for a marker. */
const FRAGMENT_NONCE = Math.random().toString(36).slice(2);
const FRAGMENT_MARK = `\u0000troupe-raw-${FRAGMENT_NONCE}:`;
/** A marker as `JSON.stringify` writes it (the NUL escaped). */
const FRAGMENT = new RegExp(`"\\\\u0000troupe-raw-${FRAGMENT_NONCE}:(\\d+)"`, "g");

/**
 * Encode like Python's `json.dumps(separators=(",", ":"), ensure_ascii=True)` so that bytes written by Troupe
 * and by Dramatiq are identical. A `bigint` is written as the JSON integer it is (Python reads an int), a
 * `RawJson` as its text. Non-finite numbers become `null` (strict JSON only on the wire).
 */
export function encodeJson(value: unknown): string {
  const outer = fragments;
  const own: string[] = [];
  fragments = own;
  let text: string | undefined;
  try {
    text = stringify(value);
  } finally {
    fragments = outer;
  }
  if (text === undefined) throw new TypeError(`value is not JSON-encodable: ${typeof value}`);
  text = text.replace(NON_ASCII, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
  return own.length === 0 ? text : text.replace(FRAGMENT, (_, i: string) => own[Number(i)]!);
}

function stringify(value: unknown): string | undefined {
  try {
    return JSON.stringify(value);
  } catch (err) {
    // JSON.stringify refuses bigints; a replacer costs on every value, so only values that hold one pay for it.
    if (!(err instanceof TypeError) || !/BigInt/i.test(err.message)) throw err;
    fragments!.length = 0;
    return JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? new RawJson(v.toString()).toJSON() : v));
  }
}

/** Python may emit the bare tokens NaN, Infinity and -Infinity; JSON.parse rejects them. */
const NON_FINITE_MARK = `\u0000troupe-nonfinite-${FRAGMENT_NONCE}:`;
const BIGINT_MARK = `\u0000troupe-bigint-${FRAGMENT_NONCE}:`;
const LONG_INTEGER = /^-?\d{16,}$/;

/** The marker string that stands for a number token JSON.parse cannot read (or, with `bigints`, not exactly). */
function tokenMark(token: string, bigints: boolean): string | undefined {
  if (token === "NaN" || token === "Infinity" || token === "-Infinity") return NON_FINITE_MARK + token;
  if (bigints && LONG_INTEGER.test(token) && !Number.isSafeInteger(Number(token))) return BIGINT_MARK + token;
  return undefined;
}

/** `text` with the number tokens `tokenMark` marks replaced by their marker strings; undefined when there are none. */
function markTokens(text: string, bigints: boolean): string | undefined {
  let out = "";
  let last = 0;
  let changed = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22) {
      i = stringEnd(text, i) - 1;
    } else if (ch === 0x2d || (ch >= 0x30 && ch <= 0x39) || ch === 0x4e || ch === 0x49) {
      const end = valueEnd(text, i);
      const mark = tokenMark(text.slice(i, end), bigints);
      if (mark !== undefined) {
        out += text.slice(last, i) + JSON.stringify(mark);
        last = end;
        changed = true;
      }
      i = end - 1;
    }
  }
  return changed ? out + text.slice(last) : undefined;
}

function reviveTokens(_key: string, value: unknown): unknown {
  if (typeof value !== "string" || value.charCodeAt(0) !== 0) return value;
  if (value.startsWith(BIGINT_MARK)) return BigInt(value.slice(BIGINT_MARK.length));
  if (value.startsWith(NON_FINITE_MARK)) {
    const token = value.slice(NON_FINITE_MARK.length);
    return token === "NaN" ? NaN : token === "Infinity" ? Infinity : -Infinity;
  }
  return value;
}

function isSpace(ch: number): boolean {
  return ch === 0x20 || ch === 0x0a || ch === 0x0d || ch === 0x09;
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && isSpace(text.charCodeAt(i))) i++;
  return i;
}

/** End (exclusive) of the JSON string that starts at `i`. */
function stringEnd(text: string, i: number): number {
  for (let j = i + 1; j < text.length; j++) {
    const ch = text.charCodeAt(j);
    if (ch === 0x5c) j++;
    else if (ch === 0x22) return j + 1;
  }
  return text.length;
}

/** End (exclusive) of the JSON value that starts at `i` (no space before it) in text that parsed. */
function valueEnd(text: string, i: number): number {
  const first = text.charCodeAt(i);
  if (first === 0x22) return stringEnd(text, i);
  if (first === 0x7b || first === 0x5b) {
    let depth = 0;
    for (let j = i; j < text.length; j++) {
      const ch = text.charCodeAt(j);
      if (ch === 0x22) j = stringEnd(text, j) - 1;
      else if (ch === 0x7b || ch === 0x5b) depth++;
      else if ((ch === 0x7d || ch === 0x5d) && --depth === 0) return j + 1;
    }
    return text.length;
  }
  let j = i;
  for (; j < text.length; j++) {
    const ch = text.charCodeAt(j);
    if (ch === 0x2c || ch === 0x5d || ch === 0x7d || ch === 0x3a || isSpace(ch)) break;
  }
  return j;
}

/**
 * The wire text of each member of the JSON object `text` (which parsed), by key; a key given twice keeps the
 * last, as JSON.parse does.
 */
export function rawMembers(text: string): Map<string, string> {
  const members = new Map<string, string>();
  let i = skipSpace(text, 0) + 1;
  for (;;) {
    i = skipSpace(text, i);
    if (text.charCodeAt(i) !== 0x22) return members;
    const keyEnd = stringEnd(text, i);
    const key = JSON.parse(text.slice(i, keyEnd)) as string;
    const start = skipSpace(text, skipSpace(text, keyEnd) + 1);
    const end = valueEnd(text, start);
    members.set(key, text.slice(start, end));
    i = skipSpace(text, end) + 1;
  }
}

/** The wire text of each element of the JSON array `text` (which parsed). */
export function rawElements(text: string): string[] {
  const elements: string[] = [];
  let i = skipSpace(text, skipSpace(text, 0) + 1);
  while (i < text.length && text.charCodeAt(i) !== 0x5d) {
    const end = valueEnd(text, i);
    elements.push(text.slice(i, end));
    i = skipSpace(text, skipSpace(text, end) + 1);
  }
  return elements;
}

/** UTF-8 bytes as text (a string passes through); raises DecodeError on bad UTF-8. */
export function decodeUtf8(data: string | Uint8Array): string {
  if (typeof data === "string") return data;
  try {
    return utf8.decode(data);
  } catch (cause) {
    throw new DecodeError("message is not valid UTF-8", data, { cause });
  }
}

/** Decode UTF-8 JSON bytes (or a string); raises DecodeError with the reason on bad UTF-8 or bad JSON. */
export function decodeJson(data: string | Uint8Array): unknown {
  const text = decodeUtf8(data);
  try {
    return JSON.parse(text);
  } catch (cause) {
    const marked = markTokens(text, false);
    if (marked !== undefined) {
      try {
        return JSON.parse(marked, reviveTokens);
      } catch {
        // fall through to the original error, which names the first problem in the sender's text
      }
    }
    throw new DecodeError(`message is not valid JSON: ${(cause as Error).message}`, data, { cause });
  }
}

/** Like `decodeJson`, but integers beyond `Number.MAX_SAFE_INTEGER` come back exact, as bigints. */
export function decodeJsonBigints(data: string | Uint8Array): unknown {
  const text = decodeUtf8(data);
  const marked = markTokens(text, true);
  try {
    return marked === undefined ? JSON.parse(text) : JSON.parse(marked, reviveTokens);
  } catch (cause) {
    throw new DecodeError(`message is not valid JSON: ${(cause as Error).message}`, data, { cause });
  }
}
