import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Message, decodeJson, encodeJson } from "troupe";
import { pythonBody, PY_ARGS, PY_KWARGS, PY_CUSTOM } from "../interop-numbers/python-shapes.js";

/**
 * Python's numbers in a message Troupe re-publishes come back as Python wrote them: the parts a copy still holds
 * are written from their wire text (Message.wireData). The broker paths are tested in test/interop-numbers/.
 */
describe("lossless re-encoding of Python's numbers", () => {
  const body = pythonBody({ queue: "q", actor: "a", options: `"redis_message_id":"r1",${PY_CUSTOM}` });

  test("a decoded message encodes as the exact text it came in", () => {
    assert.equal(Message.decode(body).encode(), body);
  });

  test("a copy with changed options keeps args, kwargs and every other option byte for byte", () => {
    const copy = Message.decode(body).copy({ queueName: "q.DQ", options: { redis_message_id: "r2", retries: 1, eta: 5 } });
    assert.equal(copy.encode(), pythonBody({ queue: "q.DQ", actor: "a", options: `"redis_message_id":"r2",${PY_CUSTOM},"retries":1,"eta":5` }));
  });

  test("an argument appended to the decoded ones leaves those as they were (a pipeline's next step)", () => {
    const message = Message.decode(body);
    const next = message.copy({ args: [...message.args, 7] });
    assert.equal(next.encode(), body.replace(`"args":${PY_ARGS}`, `"args":${PY_ARGS.slice(0, -1)},7]`));
  });

  test("a message dict inside a new message's arguments keeps its wire text (callbacks)", () => {
    const processed = Message.decode(body);
    const callback = new Message({ queueName: "q", actorName: "cb", args: [processed.wireData() as never, null], messageId: "m2", messageTimestamp: 9 });
    assert.equal(callback.encode(), `{"queue_name":"q","actor_name":"cb","args":[${body},null],"kwargs":{},"options":{},"message_id":"m2","message_timestamp":9}`);
  });

  test("an option read verbatim decodes as a message with its own wire text (pipe_target, group callbacks)", () => {
    const inner = pythonBody({ queue: "q", actor: "next", options: PY_CUSTOM });
    const outer = Message.decode(pythonBody({ queue: "q", actor: "a", options: `"pipe_target":${inner}` }));
    assert.equal(outer.rawOption("pipe_target"), inner);
    assert.equal(Message.decode(outer.rawOption("pipe_target")!).encode(), inner);
    assert.equal(outer.copy({ options: { pipe_target: null } }).rawOption("pipe_target"), undefined, "a changed option has no wire text");
  });

  test("replaced kwargs are encoded afresh, kept keys of a changed kwargs object stay raw", () => {
    const message = Message.decode(body);
    assert.equal(message.copy({ kwargs: { big: message.kwargs.big!, n: 1 } }).encode(), body.replace(`"kwargs":${PY_KWARGS}`, `"kwargs":{"big":18446744073709551617,"n":1}`));
  });

  test("JSON.stringify of such a message reads the decoded values (logs), encodeJson writes the wire text", () => {
    const copy = Message.decode(body).copy({ options: { retries: 1 } });
    assert.equal((JSON.parse(JSON.stringify(copy)) as { kwargs: { f: number } }).kwargs.f, 1);
    assert.equal(encodeJson(copy), copy.encode());
  });

  test("bigints are written as JSON integers; decoded exactly for actors that ask (bigints: true)", () => {
    assert.equal(encodeJson({ id: 9223372036854775807n, n: [1, -18446744073709551617n] }), '{"id":9223372036854775807,"n":[1,-18446744073709551617]}');
    const { args, kwargs } = Message.decode(body).withBigints();
    assert.equal(args[0], 9223372036854775807n);
    assert.equal(args[1], -9223372036854775809n);
    assert.equal(args[4], 9007199254740993n);
    assert.equal(args[5], 1, "1.0 is a number");
    assert.ok(Object.is(args[6], -0));
    assert.equal(kwargs.big, 18446744073709551617n);
    assert.equal(Message.decode(body).args[0], 9223372036854775807, "without the option: the nearest number");
  });

  test("the number tokens' scanner skips strings that look like numbers or NaN", () => {
    assert.deepEqual(decodeJson('{"s":"NaN 12345678901234567890","n":NaN}'), { s: "NaN 12345678901234567890", n: NaN });
  });
});
