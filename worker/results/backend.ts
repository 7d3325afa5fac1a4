import { decodeJson, decodeJsonBigints, encodeJson } from "../encoder.js";
import { ResultFailure, ResultMissing, ResultTimeout } from "../errors.js";
import { nodeCrypto } from "../lazy.js";
import type { GetResultOptions, Message } from "../message.js";
import { qName } from "../queues.js";

export const RESULT_MARKER = "dramatiq.results.Result";
export const DEFAULT_RESULT_TTL = 600_000;
export const DEFAULT_RESULT_TIMEOUT = 10_000;

/** How a failed actor is stored, exactly as Dramatiq stores it. */
export interface FailureRecord {
  __t: typeof RESULT_MARKER;
  exn: { type: string; msg: string };
}

export interface ResultBackendOptions {
  /** Key namespace (default `dramatiq-results`). */
  namespace?: string;
  /** Use the readable `namespace:queue:actor:id` key instead of its MD5 (Dramatiq's `use_namespace_prefix_keys`). */
  useNamespacePrefixKeys?: boolean;
}

/**
 * Results under Dramatiq's key format: MD5 of `<namespace>:<queue>:<actor>:<message_id>`, values JSON-encoded,
 * failures as `{"__t":"dramatiq.results.Result","exn":{…}}`. Transports implement `storeRaw` and `getRaw`.
 */
export abstract class ResultBackend {
  readonly namespace: string;
  readonly useNamespacePrefixKeys: boolean;

  constructor(options: ResultBackendOptions = {}) {
    this.namespace = options.namespace ?? "dramatiq-results";
    this.useNamespacePrefixKeys = options.useNamespacePrefixKeys ?? false;
  }

  /** Store an encoded value under `key` for `ttl` ms, replacing any earlier value. */
  protected abstract storeRaw(key: string, value: string, ttl: number): Promise<void>;
  /** The encoded value, or undefined; when `block`, wait up to `timeout` ms for it to appear. */
  protected abstract getRaw(key: string, block: boolean, timeout: number): Promise<string | undefined>;
  /** Reach the service now, failing with a ConnectionFailed that names its redacted URL. */
  connect?(): Promise<void>;
  abstract close(): Promise<void>;

  buildMessageKey(message: Pick<Message, "queueName" | "actorName" | "messageId">): string {
    const raw = `${this.namespace}:${qName(message.queueName)}:${message.actorName}:${message.messageId}`;
    return this.useNamespacePrefixKeys ? raw : nodeCrypto().createHash("md5").update(raw, "utf8").digest("hex");
  }

  async storeResult(message: Message, result: unknown, ttl: number = DEFAULT_RESULT_TTL): Promise<void> {
    await this.storeRaw(this.buildMessageKey(message), encodeJson(result === undefined ? null : result), ttl);
  }

  async storeException(message: Message, error: { name: string; message: string }, ttl: number = DEFAULT_RESULT_TTL): Promise<void> {
    const record: FailureRecord = { __t: RESULT_MARKER, exn: { type: error.name, msg: error.message } };
    await this.storeRaw(this.buildMessageKey(message), encodeJson(record), ttl);
  }

  /** Dramatiq's `get_result`: the value, or ResultFailure / ResultMissing / ResultTimeout. */
  async getResult<R>(message: Message<R>, { block = false, timeout = DEFAULT_RESULT_TIMEOUT, bigints = false }: GetResultOptions = {}): Promise<R> {
    const raw = await this.getRaw(this.buildMessageKey(message), block, timeout);
    if (raw === undefined) {
      if (block) throw new ResultTimeout(`timed out after ${timeout} ms waiting for the result of ${message}`);
      throw new ResultMissing(`no result for ${message}`);
    }
    const value = (bigints ? decodeJsonBigints(raw) : decodeJson(raw)) as unknown;
    if (isFailureRecord(value)) {
      throw new ResultFailure(`actor raised ${value.exn.type}: ${value.exn.msg}`, value.exn.type, value.exn.msg);
    }
    return value as R;
  }
}

function isFailureRecord(value: unknown): value is FailureRecord {
  return typeof value === "object" && value !== null && (value as { __t?: unknown }).__t === RESULT_MARKER;
}
