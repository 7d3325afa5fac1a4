/** Error classes mirror Dramatiq's hierarchy so that logs and result records name the same types. */
export class TroupeError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class DecodeError extends TroupeError {
  constructor(
    message: string,
    readonly data: string | Uint8Array | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export class BrokerError extends TroupeError {}
export class ActorNotFound extends BrokerError {}
export class QueueNotFound extends BrokerError {}
export class BrokerConnectionError extends BrokerError {}
/** Socket errors that mean the server could not be reached, as opposed to a server that answered and refused. */
const UNREACHABLE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ECONNABORTED", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EHOSTDOWN", "EPIPE", "EAI_AGAIN"]);

export class ConnectionFailed extends BrokerConnectionError {
  /**
   * The server could not be reached (refused or timed-out connection, reset socket, DNS not answering), as in an
   * outage; false when it answered and refused (credentials, vhost, database, a malformed URL), which retrying
   * cannot fix. Read from the cause chain, so every place that raises ConnectionFailed classifies alike.
   */
  get unreachable(): boolean {
    for (let cause: unknown = this.cause, depth = 0; cause instanceof Error && depth < 8; cause = cause.cause, depth++) {
      const code = (cause as Error & { code?: unknown }).code;
      if (typeof code === "string" && UNREACHABLE_CODES.has(code)) return true;
    }
    return false;
  }
}
export class ConnectionClosed extends BrokerConnectionError {}
export class QueueJoinTimeout extends TroupeError {}
export class RateLimitExceeded extends TroupeError {}

/** Throw from an actor to ask for a retry without logging an error; `delay` (ms) overrides the backoff. */
export class Retry extends TroupeError {
  constructor(
    message = "",
    readonly delay?: number,
  ) {
    super(message);
  }
}

export class MiddlewareError extends TroupeError {}
/** Raised by a `beforeProcessMessage` hook to skip the actor. */
export class SkipMessage extends MiddlewareError {}

/** Interrupts: raised into (or reported for) a running actor. */
export class Interrupt extends TroupeError {}
export class TimeLimitExceeded extends Interrupt {}
export class Shutdown extends Interrupt {}

/** A worker thread died (crash or forced termination) while running the message. */
export class WorkerThreadDied extends TroupeError {}

export class ResultError extends TroupeError {}
export class ResultMissing extends ResultError {}
export class ResultTimeout extends ResultError {}
export class ResultFailure extends ResultError {
  constructor(
    message: string,
    readonly origExcType: string,
    readonly origExcMsg: string,
  ) {
    super(message);
  }
}

/**
 * An error as it crossed a thread or process boundary: the constructor names of its prototype
 * chain are kept so that `throws` and `retryWhen` can still match classes by name.
 */
export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  chain: string[];
  /** Set when the error was a `Retry` with an explicit delay. */
  retryDelay?: number;
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof Error) {
    const chain: string[] = [];
    for (let proto = Object.getPrototypeOf(err); proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
      const ctorName = (proto.constructor as { name?: string } | undefined)?.name;
      if (ctorName) chain.push(ctorName);
    }
    const out: SerializedError = { name: err.name || chain[0] || "Error", message: err.message, stack: err.stack, chain };
    if (err instanceof Retry && err.delay !== undefined) out.retryDelay = err.delay;
    return out;
  }
  return { name: "Error", message: String(err), chain: ["Error"] };
}

/** An error rebuilt in the main thread from its serialized form; `instanceof` works for Troupe's own classes. */
export class RemoteError extends Error {
  readonly chain: string[];
  readonly retryDelay?: number;
  constructor(serialized: SerializedError) {
    super(serialized.message);
    this.name = serialized.name;
    this.chain = serialized.chain;
    this.retryDelay = serialized.retryDelay;
    if (serialized.stack) this.stack = serialized.stack;
  }
}

/** True when `err` is (or was, before crossing a thread) an instance of a class with this name. */
export function errorIsA(err: unknown, cls: string | (abstract new (...args: never[]) => unknown)): boolean {
  const name = typeof cls === "string" ? cls : cls.name;
  if (typeof cls !== "string" && err instanceof cls) return true;
  if (err instanceof RemoteError) return err.chain.includes(name) || err.name === name;
  return err instanceof Error && err.name === name;
}
