/**
 * Message bodies as Python Dramatiq writes them (compact separators, keys in its order), carrying numbers that a
 * JavaScript `number` cannot hold: integers beyond 2^53 and 2^64, `1.0`, `-0.0`, literals beyond a double's range
 * and Python's bare NaN/Infinity. Kept as text, never built with Troupe's encoder, so the tests compare bytes
 * Troupe wrote with bytes Python would have.
 */
export const PY_ARGS =
  '[9223372036854775807,-9223372036854775809,12345678901234567890,18446744073709551617,9007199254740993,1.0,-0.0,1e400,1e300,5e-324,NaN,Infinity,-Infinity,{"2":1.0,"1":[18446744073709551617,-0.0]},"1.0"]';
export const PY_KWARGS = '{"big":18446744073709551617,"f":1.0,"z":-0.0}';
/** An option Troupe does not own, with numbers of the same kinds. */
export const PY_CUSTOM = '"custom":{"id":9223372036854775807,"ratio":1.0,"tiny":5e-324}';

export interface PythonBodyFields {
  queue: string;
  actor: string;
  /** The text inside `options: {…}`. */
  options?: string;
  args?: string;
  kwargs?: string;
  messageId?: string;
  timestamp?: number;
}

export function pythonBody({ queue, actor, options = "", args = PY_ARGS, kwargs = PY_KWARGS, messageId = "4de639d5-c335-48cd-a824-5999fad81aa1", timestamp = 1795486259534 }: PythonBodyFields): string {
  return `{"queue_name":"${queue}","actor_name":"${actor}","args":${args},"kwargs":${kwargs},"options":{${options}},"message_id":"${messageId}","message_timestamp":${timestamp}}`;
}
