import type { Broker } from "../broker.js";
import type { JsonValue } from "../encoder.js";
import { Message, type MessageData } from "../message.js";
import type { MessageProxy } from "../proxy.js";
import { actorOptionsOf } from "./lookup.js";
import type { Middleware, ProcessOutcome } from "./middleware.js";
import { enqueueOrFail } from "./publish.js";

/**
 * Dramatiq's Pipelines: after a successful message that carries `pipe_target` (the next step, built by
 * `pipeline()`), enqueue that step with the result appended to its arguments, unless `pipe_ignore` is set on the
 * next message or on the current actor; the step's own `delay` option delays it. If the next step cannot be
 * enqueued the current message is failed, so the pipeline stops in the dead-letter queue instead of vanishing.
 */
export class Pipelines implements Middleware {
  readonly actorOptions = ["pipeIgnore"] as const;

  afterProcessMessage(broker: Broker, message: MessageProxy, { result, exception }: ProcessOutcome): void | Promise<void> {
    if (exception !== undefined || message.failed) return;
    const target = message.options.pipe_target;
    if (target !== undefined && target !== null) return this.enqueueNext(broker, message, target, result);
  }

  private async enqueueNext(broker: Broker, message: MessageProxy, target: JsonValue, result: unknown): Promise<void> {
    // The step as it was read, so that what Python wrote in it (args, options) is written back unchanged.
    const raw = message.message.rawOption("pipe_target");
    let next = raw === undefined ? Message.fromData(target as unknown as MessageData) : Message.decode(raw);
    const ignore = Boolean(next.options.pipe_ignore) || Boolean(actorOptionsOf(broker, message)?.pipeIgnore);
    if (!ignore) next = next.copy({ args: [...next.args, (result ?? null) as JsonValue] });
    const delay = next.options.delay;
    await enqueueOrFail(broker, message, [next], typeof delay === "number" ? delay : undefined, "the next pipeline step");
  }
}
