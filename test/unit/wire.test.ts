import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { DecodeError, Message, decodeJson, encodeJson } from "troupe";
import { goldenDir } from "../support/env.js";

interface GoldenCase {
  case: string;
  encoded: string;
  decoded: Record<string, unknown>;
}

const golden = JSON.parse(readFileSync(join(goldenDir, "messages.json"), "utf8")) as GoldenCase[];

describe("Dramatiq wire format", () => {
  for (const c of golden) {
    test(`golden ${c.case}: decodes and re-encodes byte for byte`, () => {
      const message = Message.decode(Buffer.from(c.encoded, "utf8"));
      assert.deepEqual(message.toData(), c.decoded);
      assert.equal(message.encode(), c.encoded);
    });
  }

  test("golden RabbitMQ bodies round-trip", () => {
    const rabbit = JSON.parse(readFileSync(join(goldenDir, "rabbitmq-messages.json"), "utf8")) as Record<string, { body: string }>;
    for (const { body } of Object.values(rabbit)) assert.equal(Message.decode(body).encode(), body);
  });

  test("non-ASCII is escaped as Python's ensure_ascii does, surrogate pairs included", () => {
    assert.equal(encodeJson({ s: "Zoë ✓ 😀" }), '{"s":"Zo\\u00eb \\u2713 \\ud83d\\ude00"}');
    assert.deepEqual(decodeJson('{"s":"Zo\\u00eb \\u2713 \\ud83d\\ude00"}'), { s: "Zoë ✓ 😀" });
  });

  test("Python's bare NaN and Infinity tokens decode; the same words inside strings stay text", () => {
    assert.deepEqual(decodeJson('{"a":NaN,"b":[Infinity,-Infinity],"c":"NaN Infinity"}'), { a: NaN, b: [Infinity, -Infinity], c: "NaN Infinity" });
  });

  test("a missing message_id or timestamp is generated, as Dramatiq does", () => {
    const m = Message.decode('{"queue_name":"q","actor_name":"a","args":[],"kwargs":{},"options":{}}');
    assert.match(m.messageId, /^[0-9a-f-]{36}$/);
    assert.ok(Math.abs(m.messageTimestamp - Date.now()) < 5000);
  });

  const invalid: [string, string | Uint8Array, RegExp][] = [
    ["bad UTF-8", new Uint8Array([0x7b, 0xff, 0x7d]), /not valid UTF-8/],
    ["bad JSON", "{", /not valid JSON/],
    ["not an object", "[1]", /not a JSON object/],
    ["missing kwargs", '{"queue_name":"q","actor_name":"a","args":[],"options":{}}', /required key 'kwargs'/],
    ["extra top-level key", '{"queue_name":"q","actor_name":"a","args":[],"kwargs":{},"options":{},"x":1}', /unknown top-level key 'x'/],
    ["args not an array", '{"queue_name":"q","actor_name":"a","args":{},"kwargs":{},"options":{}}', /args must be an array/],
    ["empty actor name", '{"queue_name":"q","actor_name":"","args":[],"kwargs":{},"options":{}}', /actor_name/],
    ["options null", '{"queue_name":"q","actor_name":"a","args":[],"kwargs":{},"options":null}', /options must be an object/],
  ];
  for (const [name, data, reason] of invalid) {
    test(`rejects ${name} with a DecodeError that says why`, () => {
      assert.throws(() => Message.decode(data), (err: unknown) => err instanceof DecodeError && reason.test(err.message));
    });
  }

  test("a decoded message crosses to a thread as the text it came in, with its options frozen; a copy is encoded afresh", () => {
    const sent = ' {"queue_name":"q","actor_name":"a","args":[NaN],"kwargs":{},"options":{"retries":1},"message_id":"m1","message_timestamp":5} ';
    const m = Message.decode(Buffer.from(sent, "utf8"));
    assert.equal(m.wire(), sent);
    assert.ok(Number.isNaN(Message.decode(m.wire()).args[0]));
    assert.throws(() => {
      (m.options as Record<string, unknown>).retries = 2;
    }, TypeError);
    const changed = m.copy({ options: { retries: 2 } });
    assert.equal(changed.wire(), changed.encode());
    assert.equal(Message.decode(changed.wire()).options.retries, 2);
    // Without an id in the text, decoding again would make another one: such a message is encoded.
    const anonymous = Message.decode('{"queue_name":"q","actor_name":"a","args":[],"kwargs":{},"options":{}}');
    assert.equal(Message.decode(anonymous.wire()).messageId, anonymous.messageId);
  });

  test("copy keeps id and timestamp, merges options and removes keys set to undefined", () => {
    const m = new Message({ queueName: "q", actorName: "a", options: { eta: 1, keep: true } });
    const c = m.copy({ queueName: "q.DQ", options: { eta: undefined, retries: 1 } });
    assert.equal(c.messageId, m.messageId);
    assert.equal(c.messageTimestamp, m.messageTimestamp);
    assert.deepEqual(c.options, { keep: true, retries: 1 });
  });
});
