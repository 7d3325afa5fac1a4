import { RawJson, decodeJson, decodeJsonBigints, decodeUtf8, encodeJson, rawElements, rawMembers, type JsonValue } from "./encoder.js";
import { DecodeError } from "./errors.js";
import { nodeCrypto } from "./lazy.js";

/** Message options as they travel on the wire: Dramatiq's snake_case keys, free-form JSON. */
export type MessageOptions = { [key: string]: JsonValue | undefined };

/** A message exactly as Dramatiq encodes it: seven keys, in Dramatiq's order. */
export interface MessageData {
  queue_name: string;
  actor_name: string;
  args: JsonValue[];
  kwargs: { [key: string]: JsonValue };
  options: MessageOptions;
  message_id: string;
  message_timestamp: number;
}

const REQUIRED_KEYS = ["queue_name", "actor_name", "args", "kwargs", "options"] as const;
const ALLOWED_KEYS = new Set<string>([...REQUIRED_KEYS, "message_id", "message_timestamp"]);

export interface GetResultOptions {
  /** Wait for the result instead of raising ResultMissing at once. */
  block?: boolean;
  /** How long to wait when blocking, in ms (default 10 000). */
  timeout?: number;
  /** Integers beyond `Number.MAX_SAFE_INTEGER` (a Python actor's ids) come back exact, as bigints (default false). */
  bigints?: boolean;
}

/**
 * What a message was decoded from: the text and the values JSON.parse made of it. A copy that still holds one
 * of those values (by identity) writes that value's own wire text back, so that Python's numbers survive.
 */
interface WireSource {
  readonly text: string;
  readonly args: JsonValue[];
  readonly kwargs: { [key: string]: JsonValue };
  readonly options: MessageOptions;
  readonly timestamp: number;
  /** The wire text of each part, split out on first use (re-publishing is rare next to consuming). */
  parts?: WireParts;
}

interface WireParts {
  readonly top: Map<string, string>;
  readonly options: Map<string, string>;
  kwargs?: Map<string, string>;
  args?: string[];
}

function partsOf(source: WireSource): WireParts {
  if (source.parts) return source.parts;
  const top = rawMembers(source.text);
  return (source.parts = { top, options: rawMembers(top.get("options")!) });
}

/** A value as written: its wire text when it is the one decoded, else itself. */
function rawWhenSame(value: JsonValue, decoded: JsonValue | undefined, text: () => string | undefined): JsonValue {
  if (!Object.is(value, decoded)) return value;
  const raw = text();
  return raw === undefined ? value : (new RawJson(raw) as unknown as JsonValue);
}

function spliceObject<T extends { [key: string]: JsonValue | undefined }>(current: T, decoded: T, raw: () => Map<string, string>): T {
  const out: { [key: string]: JsonValue | undefined } = {};
  for (const key in current) {
    const value = current[key];
    out[key] = value === undefined || !Object.hasOwn(decoded, key) ? value : rawWhenSame(value, decoded[key], () => raw().get(key));
  }
  return out as T;
}

/** Where `getResult` looks; set by the results module so that message.ts has no dependency on it. */
let resultLookup: ((message: Message, options: GetResultOptions) => Promise<unknown>) | undefined;
export function setResultLookup(fn: typeof resultLookup): void {
  resultLookup = fn;
}

export class Message<R = unknown> {
  readonly queueName: string;
  readonly actorName: string;
  readonly args: JsonValue[];
  readonly kwargs: { [key: string]: JsonValue };
  readonly options: MessageOptions;
  readonly messageId: string;
  readonly messageTimestamp: number;
  /** Type-only marker for the actor's return type. */
  declare readonly __result?: R;
  /** The text this message was decoded from, when decoding it again gives back this very message. */
  #wire: string | undefined;
  /** What this message (or the one it is a copy of) was decoded from. */
  #source: WireSource | undefined;

  constructor(fields: {
    queueName: string;
    actorName: string;
    args?: JsonValue[];
    kwargs?: { [key: string]: JsonValue };
    options?: MessageOptions;
    messageId?: string;
    messageTimestamp?: number;
  }) {
    this.queueName = fields.queueName;
    this.actorName = fields.actorName;
    this.args = fields.args ?? [];
    this.kwargs = fields.kwargs ?? {};
    this.options = fields.options ?? {};
    this.messageId = fields.messageId ?? nodeCrypto().randomUUID();
    this.messageTimestamp = fields.messageTimestamp ?? Date.now();
  }

  static fromData<R = unknown>(data: MessageData): Message<R> {
    return new Message<R>({
      queueName: data.queue_name,
      actorName: data.actor_name,
      args: data.args,
      kwargs: data.kwargs,
      options: data.options,
      messageId: data.message_id,
      messageTimestamp: data.message_timestamp,
    });
  }

  /**
   * Decode with Dramatiq's rules: the five required keys must be present with the right JSON types, an unknown
   * top-level key is an error, a missing id or timestamp is generated.
   */
  static decode<R = unknown>(data: string | Uint8Array): Message<R> {
    const text = decodeUtf8(data);
    const value = decodeJson(text);
    if (value === null || typeof value !== "object" || Array.isArray(value)) {
      throw new DecodeError("message is not a JSON object", data);
    }
    const obj = value as Record<string, unknown>;
    for (const key of REQUIRED_KEYS) {
      if (!(key in obj)) throw new DecodeError(`message lacks the required key '${key}'`, data);
    }
    for (const key of Object.keys(obj)) {
      if (!ALLOWED_KEYS.has(key)) throw new DecodeError(`message has an unknown top-level key '${key}'`, data);
    }
    const isObject = (v: unknown) => v !== null && typeof v === "object" && !Array.isArray(v);
    if (typeof obj.queue_name !== "string" || obj.queue_name === "") throw new DecodeError("queue_name must be a non-empty string", data);
    if (typeof obj.actor_name !== "string" || obj.actor_name === "") throw new DecodeError("actor_name must be a non-empty string", data);
    if (!Array.isArray(obj.args)) throw new DecodeError("args must be an array", data);
    if (!isObject(obj.kwargs)) throw new DecodeError("kwargs must be an object", data);
    if (!isObject(obj.options)) throw new DecodeError("options must be an object", data);
    if (obj.message_id !== undefined && typeof obj.message_id !== "string") throw new DecodeError("message_id must be a string", data);
    if (obj.message_timestamp !== undefined && (typeof obj.message_timestamp !== "number" || !Number.isFinite(obj.message_timestamp))) {
      throw new DecodeError("message_timestamp must be a number", data);
    }
    const message = Message.fromData<R>(obj as unknown as MessageData);
    if (obj.message_id !== undefined && obj.message_timestamp !== undefined) {
      // Its wire text is reused (see `wire`), so in-place changes would go unseen: options are frozen, change a message with `copy`.
      Object.freeze(message.options);
      message.#wire = text;
    }
    message.#source = { text, args: message.args, kwargs: message.kwargs, options: message.options, timestamp: message.messageTimestamp };
    return message;
  }

  toData(): MessageData {
    return {
      queue_name: this.queueName,
      actor_name: this.actorName,
      args: this.args,
      kwargs: this.kwargs,
      options: this.options,
      message_id: this.messageId,
      message_timestamp: this.messageTimestamp,
    };
  }

  /**
   * `toData` as it goes back on the wire: every part this message still holds as it was decoded (args, kwargs,
   * each option, each argument) as its wire text, byte for byte, so that a re-published Python message keeps
   * integers beyond 2^53, `1.0`, `-0.0` and `NaN` as Python wrote them. `encodeJson` writes that text; anywhere
   * else those parts read as their decoded values.
   */
  wireData(): MessageData {
    const source = this.#source;
    if (source === undefined) return this.toData();
    const parts = () => partsOf(source);
    const top = (key: string) => () => parts().top.get(key);
    let args = this.args;
    if (args === source.args) args = rawWhenSame(args, source.args, top("args")) as JsonValue[];
    else {
      const elements = () => (parts().args ??= rawElements(parts().top.get("args")!));
      args = args.map((value, i) => (i < source.args.length ? rawWhenSame(value, source.args[i], () => elements()[i]) : value));
    }
    const kwargs =
      this.kwargs === source.kwargs
        ? (rawWhenSame(this.kwargs, source.kwargs, top("kwargs")) as MessageData["kwargs"])
        : spliceObject(this.kwargs, source.kwargs, () => (parts().kwargs ??= rawMembers(parts().top.get("kwargs")!)));
    return {
      queue_name: this.queueName,
      actor_name: this.actorName,
      args,
      kwargs,
      options: spliceObject(this.options, source.options, () => parts().options),
      message_id: this.messageId,
      message_timestamp: rawWhenSame(this.messageTimestamp, source.timestamp, top("message_timestamp")) as number,
    };
  }

  /** The wire text of option `key` while this message holds the value it was decoded with, else undefined. */
  rawOption(key: string): string | undefined {
    const source = this.#source;
    if (source === undefined || !Object.hasOwn(source.options, key) || !Object.is(this.options[key], source.options[key])) return undefined;
    return partsOf(source).options.get(key);
  }

  /** Args and kwargs decoded again with integers beyond 2^53 as exact bigints (the actor option `bigints`). */
  withBigints(): { args: unknown[]; kwargs: { [key: string]: unknown } } {
    const data = decodeJsonBigints(this.wire()) as { args: unknown[]; kwargs: { [key: string]: unknown } };
    return { args: data.args, kwargs: data.kwargs };
  }

  toJSON(): MessageData {
    return this.wireData();
  }

  encode(): string {
    return this.#wire ?? encodeJson(this.wireData());
  }

  /** The message as JSON text for another thread: the text it was decoded from, else its encoding. */
  wire(): string {
    return this.#wire ?? this.encode();
  }

  /** A copy with fields replaced; `options` is shallow-merged, and a key set to undefined is removed. */
  copy(changes: { queueName?: string; args?: JsonValue[]; kwargs?: { [key: string]: JsonValue }; options?: MessageOptions; messageId?: string } = {}): Message<R> {
    const options: MessageOptions = { ...this.options };
    const changed = changes.options;
    for (const key in changed) {
      const value = changed[key];
      if (value === undefined) delete options[key];
      else options[key] = value;
    }
    const copy = new Message<R>({
      queueName: changes.queueName ?? this.queueName,
      actorName: this.actorName,
      args: changes.args ?? this.args,
      kwargs: changes.kwargs ?? this.kwargs,
      options,
      messageId: changes.messageId ?? this.messageId,
      messageTimestamp: this.messageTimestamp,
    });
    copy.#source = this.#source;
    return copy;
  }

  /** The actor's stored result; needs a results backend (see the Results middleware). */
  getResult(options: GetResultOptions = {}): Promise<R> {
    if (!resultLookup) throw new Error("no results backend is configured: add the Results middleware or set TROUPE_RESULTS_URL");
    return resultLookup(this, options) as Promise<R>;
  }

  toString(): string {
    return `${this.actorName}(${this.messageId})`;
  }
}
