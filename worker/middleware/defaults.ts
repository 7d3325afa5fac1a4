import type { Middleware } from "./middleware.js";

/**
 * The middleware every broker starts with, in Dramatiq's order (see the README's "Middleware order").
 * `after*` hooks run in reverse, so middleware added later runs its after-hooks first.
 */
export function defaultMiddleware(): Middleware[] {
  return [];
}
