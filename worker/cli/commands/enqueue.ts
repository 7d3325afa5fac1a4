import { createBroker } from "../../brokers/factory.js";
import type { JsonValue } from "../../encoder.js";
import { Message } from "../../message.js";
import { isValidQueueName } from "../../queues.js";
import { jsonOption, numberOption, parse } from "../args.js";
import { UsageError, type Command } from "../command.js";

const help = `Usage: troupe enqueue ACTOR [options]

Send one message to ACTOR without writing code. The actor does not need to be declared here.

Options:
  -q, --queue Q        queue of the actor (default "default")
      --args JSON      positional arguments, a JSON array (default [])
      --kwargs JSON    keyword arguments, a JSON object (default {})
      --options JSON   message options in Dramatiq's snake_case, e.g. '{"max_retries":3}'
      --delay MS       run no earlier than MS milliseconds from now
  -b, --broker URL     broker URL (default: $TROUPE_BROKER_URL, else memory://)

Prints the enqueued message as JSON.`;

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
    });
    if (positionals.length !== 1) throw new UsageError("name exactly one actor");
    const queue = values.queue ?? "default";
    if (!isValidQueueName(queue)) throw new UsageError(`invalid queue name "${queue}"`);
    const args = jsonOption(values.args, "args", []);
    const kwargs = jsonOption(values.kwargs, "kwargs", {});
    const options = jsonOption(values.options, "options", {});
    if (!Array.isArray(args)) throw new UsageError("--args must be a JSON array");
    const isObject = (v: unknown) => v !== null && typeof v === "object" && !Array.isArray(v);
    if (!isObject(kwargs)) throw new UsageError("--kwargs must be a JSON object");
    if (!isObject(options)) throw new UsageError("--options must be a JSON object");
    const delay = values.delay === undefined ? undefined : numberOption(values.delay, "delay", 0);
    const broker = createBroker(values.broker);
    try {
      const message = new Message({
        queueName: queue,
        actorName: positionals[0]!,
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
