import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { fixture, uniqueName } from "../support/env.js";
import { CliProcess, runCli } from "../support/process.js";
import { freePort, OwnRedisServer } from "../support/redis.js";

const password = "Db-Secret-9f3a";

/** The command failed with the broker-unreachable code, named the database problem, and kept the password out. */
function assertRefusedDatabase(code: number | null | undefined, output: string): void {
  assert.equal(code, 3, output);
  assert.match(output, /DB index is out of range/, output);
  assert.match(output, /redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/\d+/, "the error names the URL with its password redacted");
  assert.equal(output.indexOf(password), -1, "the password is not printed");
}

describe("redis: a database the server refuses", () => {
  test("enqueue and worker fail at boot with exit 3 instead of using db 0", async (t) => {
    const queue = uniqueName("select");
    const url = `redis://:${password}@127.0.0.1:6379/99`;
    const enqueue = await runCli(["enqueue", "nc_add", "-q", queue, "--args", "[1,2]", "-b", url]);
    assertRefusedDatabase(enqueue.code, enqueue.output);
    const worker = await runCli(["worker", fixture("basic"), "-Q", queue, "-p", "1", "-b", url], { timeout: 15_000 });
    assertRefusedDatabase(worker.code, worker.output);
    t.diagnostic("both commands exited 3 naming the redacted URL");
  });

  test("a worker whose server comes back with fewer databases exits 3 on the reconnect", async (t) => {
    const server = new OwnRedisServer(await freePort());
    t.after(() => server.stop());
    await server.start();
    const url = `redis://127.0.0.1:${server.port}/9`;
    const worker = new CliProcess(["worker", fixture("basic"), "-Q", uniqueName("select"), "-p", "1", "-b", url]);
    t.after(() => worker.kill());
    await worker.waitForLog((l) => l.msg === "worker started", "the worker to boot");
    await server.kill();
    await server.start(["--databases", "4"]);
    assert.equal(await worker.exited, 3, worker.output);
    assert.match(worker.output, /refused the database/);
  });
});
