import { test } from "node:test";
import assert from "node:assert/strict";
import { AMQP_URL } from "../support/env.js";
import { middlewareFixture } from "../support/middleware.js";
import { runCli } from "../support/process.js";

// Without TROUPE_RESULTS_URL a RabbitMQ broker has nowhere to keep results: both ends stop before anything is
// consumed or sent (the worker fails at boot, before it declares a queue), instead of losing every result later.
const noResults = { TROUPE_RESULTS_URL: "" };

test("a worker whose actors store results, on RabbitMQ with no results backend, fails at boot with the hint", async () => {
  const run = await runCli(["worker", middlewareFixture, "-b", AMQP_URL, "-p", "1", "-t", "1"], { env: noResults, timeout: 60_000 });
  assert.equal(run.code, 2, run.output);
  assert.match(run.output, /"mw_identity", .*store results \(storeResults\), but no results backend for broker amqp:\/\/guest:\*\*\*@127\.0\.0\.1:5672\/: set TROUPE_RESULTS_URL/);
});

test("a producer sending a message that stores results, on RabbitMQ with no results backend, fails before sending", async () => {
  const run = await runCli(["enqueue", "mw_identity", "-m", middlewareFixture, "--args", "[1]", "-b", AMQP_URL], { env: noResults });
  assert.equal(run.code, 1, run.output);
  assert.match(run.output, /"mw_identity" stores results \(storeResults\), but no results backend for broker .*: set TROUPE_RESULTS_URL/);
});
