import { DecodeError } from "./errors.js";

/** Any value that survives a JSON round trip. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

const NON_ASCII = /[\u0080-\uffff]/g;
const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Encode like Python's `json.dumps(separators=(",", ":"), ensure_ascii=True)` so that bytes written by Troupe
 * and by Dramatiq are identical. Non-finite numbers become `null` (strict JSON only on the wire).
 */
export function encodeJson(value: unknown): string {
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError(`value is not JSON-encodable: ${typeof value}`);
  return text.replace(NON_ASCII, (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Python may emit the bare tokens NaN, Infinity and -Infinity; JSON.parse rejects them. */
const NON_FINITE_TOKEN = /(-?Infinity|NaN)/y;
const NON_FINITE_MARK = "\u0000troupe-nonfinite:";

function rewriteNonFinite(text: string): string | undefined {
  let out = "";
  let last = 0;
  let inString = false;
  let changed = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c) i++;
      else if (ch === 0x22) inString = false;
      continue;
    }
    if (ch === 0x22) {
      inString = true;
      continue;
    }
    if (ch === 0x4e || ch === 0x49 || ch === 0x2d) {
      NON_FINITE_TOKEN.lastIndex = i;
      const m = NON_FINITE_TOKEN.exec(text);
      if (m) {
        out += text.slice(last, i) + JSON.stringify(NON_FINITE_MARK + m[1]);
        i += m[1].length - 1;
        last = i + 1;
        changed = true;
      }
    }
  }
  return changed ? out + text.slice(last) : undefined;
}

function reviveNonFinite(_key: string, value: unknown): unknown {
  if (typeof value === "string" && value.startsWith(NON_FINITE_MARK)) {
    const token = value.slice(NON_FINITE_MARK.length);
    return token === "NaN" ? NaN : token === "Infinity" ? Infinity : -Infinity;
  }
  return value;
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
    const rewritten = rewriteNonFinite(text);
    if (rewritten !== undefined) {
      try {
        return JSON.parse(rewritten, reviveNonFinite);
      } catch {
        // fall through to the original error, which names the first problem in the sender's text
      }
    }
    throw new DecodeError(`message is not valid JSON: ${(cause as Error).message}`, data, { cause });
  }
}
