/**
 * The middleware interface and its hook types live beside Broker, which dispatches them: declared here they would
 * import Broker while Broker imports them, an import circle. Middleware modules keep importing them from here.
 */
export type { HookArgs, HookName, Middleware, ProcessOutcome, WorkerInfo } from "../broker.js";
