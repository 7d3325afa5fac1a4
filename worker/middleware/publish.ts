import type { Broker } from "../broker.js";
import type { JsonValue } from "../encoder.js";
import { getLogger, messageFields } from "../logging.js";
import { Message } from "../message.js";
import type { MessageProxy } from "../proxy.js";

const log = getLogger("middleware");

/**
 * Enqueue what processing `proxy` produced (a retry, the next pipeline step, group callbacks). If that fails
 * the message is failed instead, so it is dead-lettered with the reason rather than acked and lost.
 */
export async function enqueueOrFail(broker: Broker, proxy: MessageProxy, messages: Message[], delay: number | undefined, what: string): Promise<boolean> {
  try {
    await broker.enqueueMany(messages, { delay });
    return true;
  } catch (err) {
    const reason = `could not enqueue ${what}: ${(err as Error).message ?? err}`;
    proxy.fail(reason);
    log.error(reason, { ...messageFields(proxy.message), err });
    return false;
  }
}

/**
 * Send a callback message (`on_success`, `on_failure`, `on_retry_exhausted`) to the actor named `target`, on the
 * queue that actor is declared with here. Like Dramatiq, a target unknown to this process is logged, not raised.
 */
export async function sendToActor(broker: Broker, proxy: MessageProxy, target: string, args: JsonValue[], what: string): Promise<void> {
  const actor = broker.registry.get(target);
  if (!actor) {
    log.error(`${what} actor "${target}" is not declared in this worker; callback dropped`, messageFields(proxy.message));
    return;
  }
  try {
    await broker.enqueue(new Message({ queueName: actor.queueName, actorName: target, args }));
  } catch (err) {
    log.error(`could not enqueue the ${what} callback`, { ...messageFields(proxy.message), target, err });
  }
}

/**
 * A processed message as callbacks receive it: Dramatiq's `message.asdict()`, with its current options; what it
 * still holds as it was read goes out as its wire text (see `Message.wireData`).
 */
export function messageDict(proxy: MessageProxy): JsonValue {
  return proxy.message.wireData() as unknown as JsonValue;
}
