import type { Broker } from "../broker.js";
import type { MessageProxy } from "../proxy.js";
import { actorOptionsOf } from "./lookup.js";
import type { Middleware } from "./middleware.js";

/**
 * Dramatiq's ShutdownNotifications: when the worker begins to stop, actors whose message asks for it
 * (`notify_shutdown`) are interrupted with `Shutdown` (their abort signal fires) instead of being waited for; the
 * interrupted message fails and is retried. Every actor can also poll `isShuttingDown()` or use `onShutdown()`.
 */
export class ShutdownNotifications implements Middleware {
  readonly actorOptions = ["notifyShutdown"] as const;
  readonly notifyShutdown: boolean;

  constructor({ notifyShutdown = false }: { notifyShutdown?: boolean } = {}) {
    this.notifyShutdown = notifyShutdown;
  }

  beforeProcessMessage(broker: Broker, message: MessageProxy): void {
    // A message-level `false` overrides an actor-level `true`, so only null/absent fall through (Dramatiq's rule).
    const fromMessage = message.options.notify_shutdown;
    const fromActor = actorOptionsOf(broker, message)?.notifyShutdown;
    message.notifyShutdown = Boolean(fromMessage ?? fromActor ?? this.notifyShutdown);
  }
}
