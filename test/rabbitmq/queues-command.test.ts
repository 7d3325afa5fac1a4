import { test } from "node:test";
import assert from "node:assert/strict";
import { Message, RabbitmqBroker } from "troupe";
import { AMQP_URL, uniqueName } from "../support/env.js";
import { runCli } from "../support/process.js";
import { RawAmqp, managementUrl } from "../support/rabbitmq.js";

test("troupe queues on RabbitMQ without the management API says what it cannot read and how to enable it", async () => {
  const queue = uniqueName("queues_cmd");
  const broker = new RabbitmqBroker(AMQP_URL, { managementUrl: undefined });
  const amqp = await RawAmqp.open();
  const env = { TROUPE_RABBITMQ_MANAGEMENT_URL: "" };
  try {
    await broker.enqueue(new Message({ queueName: queue, actorName: "nobody", args: [] }));

    const listing = await runCli(["queues", "-b", AMQP_URL], { env });
    assert.equal(listing.code, 2, listing.output);
    assert.match(listing.output, /no queue to show: name them with -Q, or let the broker list them: without RabbitMQ's management API/);
    assert.match(listing.output, /TROUPE_RABBITMQ_MANAGEMENT_URL=http:\/\/user:password@host:15672/);
    assert.match(listing.output, /rabbitmq-plugins enable rabbitmq_management/);

    const named = await runCli(["queues", "-Q", queue, "-b", AMQP_URL, "--json"], { env });
    assert.equal(named.code, 0, named.output);
    assert.match(named.output, new RegExp(`"queue": "${queue}"[\\s\\S]*"ready": 1`));
    assert.match(named.output, /warning: without RabbitMQ's management API, in-flight counts \(fetched, not yet acked\) cover only this process/);

    const management = await managementUrl();
    if (management) {
      const full = await runCli(["queues", "-Q", queue, "-b", AMQP_URL], { env: { TROUPE_RABBITMQ_MANAGEMENT_URL: management } });
      assert.equal(full.code, 0, full.output);
      assert.doesNotMatch(full.output, /warning/, "with the management API nothing is missing");
    }
  } finally {
    await broker.close();
    await amqp.deleteQueues(queue, `${queue}.DQ`, `${queue}.XQ`);
    await amqp.close();
  }
});
