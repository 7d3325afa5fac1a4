import { AgeLimit } from "./age-limit.js";
import { Callbacks } from "./callbacks.js";
import { GroupCallbacks } from "./group-callbacks.js";
import type { Middleware } from "./middleware.js";
import { Pipelines } from "./pipelines.js";
import { Prometheus } from "./prometheus.js";
import { Results } from "../results/middleware.js";
import { Retries } from "./retries.js";
import { ShutdownNotifications } from "./shutdown-notifications.js";
import { TimeLimit } from "./time-limit.js";

/**
 * The middleware every broker starts with: Prometheus first (so it sees every message, skipped ones included, and
 * its after-hooks see the final outcome), then Dramatiq's defaults in Dramatiq's order, then Results and
 * GroupCallbacks as Dramatiq users append them. `after*` hooks run in reverse, so Results and GroupCallbacks run
 * before Retries, and Callbacks see the retry count Retries wrote. Results and GroupCallbacks touch their
 * backends only for messages that use them. See docs/middleware.md.
 */
export function defaultMiddleware(): Middleware[] {
  return [
    new Prometheus(),
    new AgeLimit(),
    new TimeLimit(),
    new ShutdownNotifications(),
    new Callbacks(),
    new Pipelines(),
    new Retries(),
    new Results(),
    new GroupCallbacks(),
  ];
}
