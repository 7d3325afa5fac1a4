import { RawJson, type JsonValue } from "./encoder.js";

/**
 * Raise a TypeError naming the path of the first value that would not survive a JSON round trip,
 * so that a bad argument fails at send time (as in Dramatiq) instead of arriving changed.
 */
export function assertJson(value: unknown, path = "$"): asserts value is JsonValue {
  switch (typeof value) {
    case "string":
    case "boolean":
      return;
    case "number":
    case "bigint": // written as the JSON integer it is, which Python reads exactly
      return;
    case "object": {
      if (value === null || value instanceof RawJson) return;
      if (Array.isArray(value)) {
        value.forEach((item, i) => assertJson(item, `${path}[${i}]`));
        return;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw new TypeError(`${path} is a ${proto?.constructor?.name ?? "non-plain object"}, which is not JSON; convert it first`);
      }
      for (const [key, item] of Object.entries(value)) assertJson(item, `${path}.${key}`);
      return;
    }
    default:
      throw new TypeError(`${path} is a ${typeof value}, which is not JSON`);
  }
}
