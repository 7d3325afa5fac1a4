import fc from "fast-check";
import { encodeJson, type JsonValue } from "troupe";

/**
 * Fuzzed deliveries for the chaos actors: each is described first (so fast-check can print and shrink it) and
 * rendered to bytes with a fresh id when fed. `valid` says what must happen: run once, or be dead-lettered.
 */
export type BadInputSpec =
  | { kind: "valid"; kwargs: Record<string, JsonValue>; options: Record<string, JsonValue>; ballast: number }
  | { kind: "wrong type"; field: Field; value: JsonValue }
  | { kind: "missing field"; field: Required }
  | { kind: "extra key"; key: string; value: JsonValue }
  | { kind: "unknown actor"; name: string }
  | { kind: "bad arguments"; args: JsonValue[] }
  | { kind: "non-finite token"; where: "id" | "timestamp" | "kwargs" }
  | { kind: "not JSON"; text: string }
  | { kind: "not an object"; value: JsonValue }
  | { kind: "invalid UTF-8"; bytes: number[] };

type Required = "queue_name" | "actor_name" | "args" | "kwargs" | "options";
type Field = Required | "message_id" | "message_timestamp";

export interface Rendered {
  raw: Buffer;
  /** The id chaos_record records when the delivery is valid. */
  id: string;
  valid: boolean;
  kind: string;
}

/** Names that must never resolve to anything but "no such actor": prototype keys, globals, paths. */
export const HOSTILE_ACTOR_NAMES = [
  "__proto__", "constructor", "prototype", "toString", "valueOf", "hasOwnProperty", "__defineGetter__",
  "eval", "Function", "require", "process", "process.exit", "globalThis", "import", "../../../../etc/passwd",
  "/proc/self/environ", "chaos_record.constructor", "chaos_record/../chaos_record", "CHAOS_RECORD", "chaos_record ",
  " chaos_record", "chaos_record\u0000", "node:child_process",
];

const KNOWN_ACTORS = new Set(["chaos_record", "chaos_slow", "chaos_step"]);
/** fast-check's JSON values, typed as the wire's. */
const json = (maxDepth: number) => fc.jsonValue({ maxDepth }) as fc.Arbitrary<JsonValue>;
const isId = (v: unknown) => typeof v === "string" && v !== "" && !/\s/.test(v);

const wrongTypeFor: Record<Field, fc.Arbitrary<JsonValue>> = {
  queue_name: fc.oneof(fc.constant(""), fc.integer(), fc.constant(null), fc.array(fc.string())),
  actor_name: fc.oneof(fc.constant(""), fc.double(), fc.boolean(), fc.dictionary(fc.string(), fc.string())),
  args: fc.oneof(fc.string(), fc.integer(), fc.constant(null), fc.dictionary(fc.string(), fc.integer())),
  kwargs: fc.oneof(fc.string(), fc.constant(null), fc.array(fc.integer())),
  options: fc.oneof(fc.boolean(), fc.constant(null), fc.array(fc.string())),
  message_id: fc.oneof(fc.integer(), fc.constant(null), fc.array(fc.string())),
  message_timestamp: fc.oneof(fc.string(), fc.constant(null), fc.boolean()),
};
const FIELDS = Object.keys(wrongTypeFor) as Field[];
// Option keys a worker acts on (eta, retries, callbacks…) are left out: here only the envelope is under test.
const optionKey = fc.string({ minLength: 1, maxLength: 8 }).map((k) => `x_${k}`);

export function badInputSpec({ utf8 = true, maxBallast = 2_000_000 } = {}): fc.Arbitrary<BadInputSpec> {
  const kinds: fc.Arbitrary<BadInputSpec>[] = [
    fc.record({
      kind: fc.constant("valid" as const),
      kwargs: fc.dictionary(fc.string({ maxLength: 6 }), json(2), { maxKeys: 3 }),
      options: fc.dictionary(optionKey, json(2), { maxKeys: 3 }),
      ballast: fc.oneof({ weight: 9, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: 10_000, max: maxBallast }) }),
    }),
    fc.constantFrom(...FIELDS).chain((field) => wrongTypeFor[field].map((value) => ({ kind: "wrong type" as const, field, value }))),
    fc.record({ kind: fc.constant("missing field" as const), field: fc.constantFrom<Required>("queue_name", "actor_name", "args", "kwargs", "options") }),
    fc.record({
      kind: fc.constant("extra key" as const),
      key: fc.oneof(fc.constantFrom("__proto__", "constructor", "eta", "redis_message_id"), fc.string({ minLength: 1 })).filter((k) => !FIELDS.includes(k as Field)),
      value: json(1),
    }),
    fc.record({ kind: fc.constant("unknown actor" as const), name: fc.oneof(fc.constantFrom(...HOSTILE_ACTOR_NAMES), fc.string({ minLength: 1, unit: "binary" })).filter((n) => !KNOWN_ACTORS.has(n)) }),
    fc.record({ kind: fc.constant("bad arguments" as const), args: fc.array(json(2), { maxLength: 3 }).filter((a) => !isId(a[0])) }),
    fc.record({ kind: fc.constant("non-finite token" as const), where: fc.constantFrom("id" as const, "timestamp" as const, "kwargs" as const) }),
    fc.record({ kind: fc.constant("not JSON" as const), text: fc.string({ unit: "binary" }).filter((t) => !isJson(t)) }),
    fc.record({ kind: fc.constant("not an object" as const), value: fc.oneof(fc.array(json(1)), fc.string(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.constant(null)) }),
  ];
  if (utf8) {
    // Overlong forms, lone continuation bytes, UTF-16 surrogates and bytes that never occur in UTF-8.
    const broken = fc.constantFrom<number[]>([0xff], [0xc0, 0xaf], [0x80], [0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xe2, 0x82]);
    kinds.push(fc.record({ kind: fc.constant("invalid UTF-8" as const), bytes: broken }));
  }
  return fc.oneof(...kinds);
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return /\b(NaN|Infinity)\b/.test(text);
  }
}

export function render(spec: BadInputSpec, queue: string, id: string): Rendered {
  const envelope: Record<string, JsonValue> = { queue_name: queue, actor_name: "chaos_record", args: [id], kwargs: {}, options: {}, message_id: id, message_timestamp: Date.now() };
  const done = (valid: boolean, text: string | Buffer = encodeJson(envelope)): Rendered => ({ raw: Buffer.isBuffer(text) ? text : Buffer.from(text, "utf8"), id, valid, kind: spec.kind });
  switch (spec.kind) {
    case "valid":
      envelope.kwargs = spec.kwargs;
      envelope.options = spec.options;
      if (spec.ballast) envelope.kwargs = { ...spec.kwargs, ballast: "x".repeat(spec.ballast) };
      return done(true);
    case "wrong type":
      envelope[spec.field] = spec.value;
      return done(false);
    case "missing field":
      delete envelope[spec.field];
      return done(false);
    case "extra key":
      // defineProperty, so that a key such as "__proto__" becomes an own key of the JSON object, not a prototype.
      Object.defineProperty(envelope, spec.key, { value: spec.value, enumerable: true, configurable: true, writable: true });
      return done(false);
    case "unknown actor":
      envelope.actor_name = spec.name;
      return done(false);
    case "bad arguments":
      envelope.args = spec.args;
      return done(false);
    case "non-finite token": {
      // Python's json emits bare NaN/Infinity; a non-finite id or timestamp is invalid, elsewhere it is data.
      if (spec.where === "id") envelope.args = ["@NONFINITE@"];
      else if (spec.where === "timestamp") envelope.message_timestamp = "@NONFINITE@";
      else envelope.kwargs = { limit: "@NONFINITE@" };
      const token = spec.where === "kwargs" ? "-Infinity" : "NaN";
      return done(spec.where === "kwargs", encodeJson(envelope).replace('"@NONFINITE@"', token));
    }
    case "not JSON":
      return done(false, spec.text);
    case "not an object":
      return done(false, encodeJson(spec.value));
    case "invalid UTF-8": {
      envelope.kwargs = { note: "@BYTES@" };
      const [before, after] = encodeJson(envelope).split("@BYTES@") as [string, string];
      return done(false, Buffer.concat([Buffer.from(before), Buffer.from(spec.bytes), Buffer.from(after)]));
    }
  }
}
