import type { Broker } from "../broker.js";
import type { MessageOptions } from "../message.js";
import { resolveOption, type ActorOptions, type WireOptions } from "../options.js";
import type { MessageProxy } from "../proxy.js";

/** The options of the actor a message names (with run-time overrides), or undefined when it is not declared here. */
export function actorOptionsOf(broker: Broker, message: MessageProxy): ActorOptions | undefined {
  return broker.registry.optionsOf(message.actorName);
}

/** Dramatiq's message → actor → default lookup for one option of a message being processed. */
export function optionOf<T>(broker: Broker, message: MessageProxy, name: keyof WireOptions, fallback: T, lookup?: { truthy?: boolean }): T {
  return resolveOption(message.options as MessageOptions, actorOptionsOf(broker, message), name, fallback, lookup);
}
