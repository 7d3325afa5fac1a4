import { createBroker, setBroker } from "../../setup.js";
import type { JsonValue } from "../../encoder.js";
import { Message } from "../../message.js";
import { isValidQueueName } from "../../queues.js";
import { defaultRegistry } from "../../registry.js";
import { importModules } from "../../runtime/load-modules.js";
import { jsonOption, modulePaths, numberOption, parse, sharedBrokerUrlOption } from "../args.js";
import { UsageError, type Command } from "../command.js";

const help = `Usage: troupe enqueue ACTOR [options]

Send one message to ACTOR without writing code. The actor does not need to be declared here: with --module the
queue is the actor's own, else give it with -q (without either, "default" is used, with a warning).

Options:
  -q, --queue Q        queue of the actor (default: the actor's queue with --module, else "default")
  -m, --module PATH    actor module(s) declaring ACTOR (repeatable): its queue is taken from there
      --args JSON      positional arguments, a JSON array (default [])
      --kwargs JSON    keyword arguments, a JSON object (default {})
      --options JSON   message options in Dramatiq's snake_case, e.g. '{"max_retries":3}'
      --delay MS       run no earlier than MS milliseconds from now
  -b, --broker URL     broker URL (default: $TROUPE_BROKER_URL; the in-memory broker cannot be reached from here)

Prints the enqueued message as JSON.`;

/** The queue to send to: -q, else the actor's own when a module declares it, else "default" with a warning. */
async function queueFor(actorName: string, flag: string | undefined, modules: string[]): Promise<string> {
  if (modules.length > 0) {
    await importModules(modulePaths(modules));
    const declared = defaultRegistry.get(actorName);
    if (!declared) throw new UsageError(`no actor named "${actorName}" is declared in ${modules.join(", ")}`);
    if (flag !== undefined && flag !== declared.queueName) {
      throw new UsageError(`actor "${actorName}" consumes queue "${declared.queueName}", not "${flag}": drop -q or fix it`);
    }
    return declared.queueName;
  }
  if (flag !== undefined) return flag;
  console.error(`troupe enqueue: no --queue or --module given: sending "${actorName}" to queue "default"; if the actor lives on another queue, no worker will run it`);
  return "default";
}

const command: Command = {
  summary: "send one message without writing code",
  help,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      queue: { type: "string", short: "q" },
      args: { type: "string" },
      kwargs: { type: "string" },
      options: { type: "string" },
      delay: { type: "string" },
      broker: { type: "string", short: "b" },
      module: { type: "string", short: "m", multiple: true },
    });
    if (positionals.length !== 1) throw new UsageError("name exactly one actor");
    const actorName = positionals[0]!;
    const args = jsonOption(values.args, "args", []);
    const kwargs = jsonOption(values.kwargs, "kwargs", {});
    const options = jsonOption(values.options, "options", {});
    if (!Array.isArray(args)) throw new UsageError("--args must be a JSON array");
    const isObject = (v: unknown) => v !== null && typeof v === "object" && !Array.isArray(v);
    if (!isObject(kwargs)) throw new UsageError("--kwargs must be a JSON object");
    if (!isObject(options)) throw new UsageError("--options must be a JSON object");
    const delay = values.delay === undefined ? undefined : numberOption(values.delay, "delay", 0);
    const brokerUrl = sharedBrokerUrlOption(values.broker, "troupe enqueue");
    const queue = await queueFor(actorName, values.queue, values.module ?? []);
    if (!isValidQueueName(queue)) throw new UsageError(`invalid queue name "${queue}"`);
    // The process's broker, so that what the middleware needs of it (a results backend beside it) resolves.
    const broker = setBroker(createBroker(brokerUrl));
    try {
      const message = new Message({
        queueName: queue,
        actorName,
        args: args as JsonValue[],
        kwargs: kwargs as { [key: string]: JsonValue },
        options: options as { [key: string]: JsonValue },
      });
      const sent = await broker.enqueue(message, { delay });
      console.log(sent.encode());
      return 0;
    } finally {
      await broker.close();
    }
  },
};
export default command;
