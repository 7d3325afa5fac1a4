import type { Broker } from "../broker.js";
import type { JsonValue } from "../encoder.js";
import type { MessageProxy } from "../proxy.js";
import { exceptionInfo } from "./error-info.js";
import { optionOf } from "./lookup.js";
import type { Middleware, ProcessOutcome } from "./middleware.js";
import { messageDict, sendToActor } from "./publish.js";

/**
 * Dramatiq's Callbacks: after a success, `on_success` is sent `(message dict, result)`; after every failure
 * (including ones that will be retried) `on_failure` is sent `(message dict, {type, message})`.
 */
export class Callbacks implements Middleware {
  readonly actorOptions = ["onSuccess", "onFailure"] as const;

  afterProcessMessage(broker: Broker, message: MessageProxy, { result, exception }: ProcessOutcome): void | Promise<void> {
    if (exception === undefined) {
      const target = optionOf<string | undefined>(broker, message, "onSuccess", undefined, { truthy: true });
      if (target) return sendToActor(broker, message, target, [messageDict(message), (result ?? null) as JsonValue], "on_success");
      return;
    }
    const target = optionOf<string | undefined>(broker, message, "onFailure", undefined, { truthy: true });
    if (target) return sendToActor(broker, message, target, [messageDict(message), exceptionInfo(exception)], "on_failure");
  }
}
