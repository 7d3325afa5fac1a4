import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ConnectionFailed, RabbitmqBroker } from "troupe";
import { RabbitCluster } from "../support/own-rabbitmq.js";
import { freePort } from "../support/redis.js";

describe("RabbitMQ cluster of three nodes", () => {
  let cluster: RabbitCluster;

  before(async () => {
    cluster = await RabbitCluster.start();
  });

  after(async () => {
    await cluster?.stop();
  });

  test("connects to any live node of the URL, and a start-up failure names every node tried", async (t) => {
    t.diagnostic(`three nodes booted and joined in ${(cluster.startMs / 1000).toFixed(1)} s`);
    const dead = [await freePort(), await freePort()];
    const broker = new RabbitmqBroker("amqp://guest:guest@127.0.0.1/", { hosts: [`127.0.0.1:${dead[0]}`, `127.0.0.1:${dead[1]}`, `127.0.0.1:${cluster.portOf("b")}`] });
    await broker.connect();
    await broker.close();

    const nowhere = new RabbitmqBroker(`amqp://guest:secret@127.0.0.1:${dead[0]},127.0.0.1:${dead[1]}/`);
    await assert.rejects(nowhere.connect(), (err: Error) => {
      assert.ok(err instanceof ConnectionFailed, String(err));
      for (const port of dead) assert.ok(err.message.includes(`127.0.0.1:${port}: connection refused`), err.message);
      assert.doesNotMatch(err.message, /secret/);
      return true;
    });
  });
});
