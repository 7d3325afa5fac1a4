import type { Command } from "../command.js";

const help = `Usage: troupe demo

Run the local demo on the embedded in-memory broker: a worker with the example actors of examples/, a mixed load
(successes, retries, a pipeline, a group, failures that end in the dead-letter queue), live progress, a summary.`;

const command: Command = {
  summary: "run a local demo on the in-memory broker",
  help,
  async run() {
    const { runDemo } = await import("../demo/run.js");
    return runDemo();
  },
};
export default command;
