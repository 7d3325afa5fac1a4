import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { PY_ARGS, PY_CUSTOM, PY_KWARGS, pythonBody } from "./python-shapes.js";

export const TIMESTAMP = 1795486259534;

/** A message dict as Python writes one inside options (pipe_target, group callbacks): no broker id. */
export function pythonDict(queue: string, actor: string, messageId = randomUUID()): { text: string; queue: string; messageId: string } {
  return { text: pythonBody({ queue, actor, options: PY_CUSTOM, messageId }), queue, messageId };
}

/**
 * The parts of a body Troupe re-published that it did not change, checked byte for byte: everything before the
 * options (queue, actor, Python's args and kwargs), everything after them (message id, timestamp), and Python's
 * custom option inside them.
 */
export function assertKept(written: string, { queue, actor, messageId, args = PY_ARGS }: { queue: string; actor: string; messageId: string; args?: string }): string {
  const head = `{"queue_name":"${queue}","actor_name":"${actor}","args":${args},"kwargs":${PY_KWARGS},"options":{`;
  const tail = `},"message_id":"${messageId}","message_timestamp":${TIMESTAMP}}`;
  assert.ok(written.startsWith(head), `queue, actor, args and kwargs as Python wrote them:\n${written}\n${head}`);
  assert.ok(written.endsWith(tail), `message id and timestamp as Python wrote them:\n${written}`);
  const options = written.slice(head.length, written.length - tail.length);
  assert.ok(options.includes(PY_CUSTOM), `Python's custom option kept byte for byte: ${options}`);
  return options;
}

/** Python's args with a pipeline step's result appended, as Python would write them. */
export function argsWith(result: string): string {
  return `${PY_ARGS.slice(0, -1)},${result}]`;
}
