import { fileURLToPath } from "node:url";
import { MemoryBroker } from "../../brokers/memory.js";
import { group, pipeline } from "../../composition.js";
import { setLogLevel } from "../../logging.js";
import type { Message } from "../../message.js";
import { GroupCallbacks } from "../../middleware/group-callbacks.js";
import type { Middleware } from "../../middleware/middleware.js";
import { Results } from "../../results/middleware.js";
import { MemoryResultBackend } from "../../results/memory.js";
import { importModules } from "../../runtime/load-modules.js";
import { Worker } from "../../runtime/worker.js";
import { setBroker, setResultBackend } from "../../setup.js";
import { DemoProgress } from "./progress.js";

const ACTORS = fileURLToPath(new URL("../../../examples/demo/actors.js", import.meta.url));
const QUEUE = "demo";

/**
 * The main job on the embedded default: an in-memory broker, a worker with 4 threads running the example actors,
 * and a mixed load. Finishes on its own and prints a summary.
 */
export async function runDemo(out: NodeJS.WriteStream = process.stdout): Promise<number> {
  const started = Date.now();
  // The demo fails on purpose; its log lines would bury the progress display unless asked for.
  if (!process.env.TROUPE_LOG_LEVEL) setLogLevel("critical");
  const broker = setBroker(new MemoryBroker());
  const results = setResultBackend(new MemoryResultBackend());
  if (!broker.middleware.some((m) => m instanceof Results)) broker.addMiddleware(new Results({ backend: results }));
  if (!broker.middleware.some((m) => m instanceof GroupCallbacks)) broker.addMiddleware(new GroupCallbacks());
  const progress = new DemoProgress(out);
  broker.addMiddleware(progress as Middleware);

  await importModules([ACTORS]);
  // Loaded by path (the compiled example beside the package), typed from its source so the demo is checked as
  // a user's code would be.
  const actors = (await import(ACTORS)) as typeof import("../../../examples/demo/actors.js");
  const worker = new Worker(broker, { modules: [ACTORS], threads: 4, concurrency: 4 });
  await worker.start();
  out.write(`Troupe demo: in-memory broker, 1 process x 4 threads x concurrency 4, queue "${QUEUE}" (TROUPE_LOG_LEVEL=info shows the logs)\n`);
  progress.start();

  const sends: Promise<Message>[] = [];
  for (let i = 0; i < 400; i++) sends.push(actors.add.send(i, i));
  for (let i = 0; i < 200; i++) sends.push(actors.fetchPage.send(i));
  for (const name of ["Ada", "Grace", "Linus"]) sends.push(actors.greet.send(name));
  for (let i = 0; i < 10; i++) sends.push(actors.flaky.send(i));
  for (const card of ["4000-0000-0000-0002", "4000-0000-0000-0069"]) sends.push(actors.charge.send(card));
  sends.push(actors.validate.send({ id: "o-17", qty: 0 }));
  sends.push(actors.greet.sendWithOptions({ args: ["later"], delay: 500 }));
  const [greeting] = await Promise.all([actors.greet.send("demo"), ...sends]);

  const chain = await pipeline([actors.add.message(2, 3), actors.multiply.step(10), actors.format.step()]).run();
  const squares = group(Array.from({ length: 10 }, (_, i) => actors.square.message(i + 1)));
  const callback = actors.groupDone.message("squares");
  await squares.addCompletionCallback(callback).run();

  const [chainResult, squareResults, callbackResult, greetingResult] = await Promise.all([
    chain.getResult({ block: true, timeout: 20_000 }),
    squares.getResults({ block: true, timeout: 20_000 }),
    results.getResult(callback, { block: true, timeout: 20_000 }),
    results.getResult(greeting, { block: true, timeout: 20_000 }),
  ]);
  await broker.join(QUEUE, { timeout: 25_000 });
  await worker.stop(5_000);
  progress.stop();

  const dead = await broker.deadLetters(QUEUE);
  const lines = [
    "",
    "Summary",
    `  processed      ${progress.succeeded} succeeded, ${progress.failed} failed attempts`,
    `  retried        ${progress.retried} retries scheduled with exponential backoff`,
    `  dead-lettered  ${dead.length}`,
    ...dead.map((d) => `                 - ${d.message?.actorName}(${JSON.stringify(d.message?.args)}): ${d.reason ?? "failed"}`),
    `  results        greet("demo") → ${JSON.stringify(greetingResult)}`,
    `                 pipeline add(2, 3) | multiply(10) | format() → ${JSON.stringify(chainResult)}`,
    `                 group of 10 squares → ${JSON.stringify(squareResults)}`,
    `                 group completion callback → ${JSON.stringify(callbackResult)}`,
    `  time taken     ${((Date.now() - started) / 1000).toFixed(1)} s`,
  ];
  out.write(lines.join("\n") + "\n");
  return 0;
}
