import { RemoteError } from "../errors.js";

/**
 * The error's type as Dramatiq reports it (`type(exception).__name__`): its `name`, or its class name when `name`
 * was left as the inherited "Error" (a user class that does not set it).
 */
export function errorType(err: unknown): string {
  if (!(err instanceof Error)) return "Exception";
  if (err.name !== "Error") return err.name;
  if (err instanceof RemoteError) return err.chain[0] ?? err.name;
  return err.constructor.name || err.name;
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `{type, message}` as Dramatiq's `on_failure` callbacks receive it. */
export function exceptionInfo(err: unknown): { type: string; message: string } {
  return { type: errorType(err), message: errorText(err) };
}
