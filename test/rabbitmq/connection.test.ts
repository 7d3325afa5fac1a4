import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { ConnectionFailed, Message, RabbitmqBroker } from "troupe";
import { uniqueName } from "../support/env.js";
import { BrokerRelay, RawAmqp, captureLogs, rabbitmqctl } from "../support/rabbitmq.js";

const exec = promisify(execFile);

/** Publish one message through `broker` and read it back through a plain client on `url`. */
async function roundTrip(broker: RabbitmqBroker, url: string): Promise<void> {
  const queue = uniqueName("rabbit_conn");
  const raw = await RawAmqp.open(url);
  try {
    await broker.connect();
    const sent = await broker.enqueue(new Message({ queueName: queue, actorName: "radd", args: [1, 2] }));
    const got = await raw.channel.get(queue, { noAck: true });
    assert.ok(got, "the message is on the queue");
    assert.equal(got.content.toString(), sent.encode());
  } finally {
    await raw.deleteQueues(queue);
    await raw.close();
  }
}

describe("RabbitMQ connections", () => {
  test("wrong credentials fail start-up at once with the URL, password redacted, in the error and the logs", async () => {
    const lines: string[] = [];
    const broker = new RabbitmqBroker("amqp://guest:Sup3rSecret@127.0.0.1:5672/");
    const started = Date.now();
    await captureLogs(lines, () =>
      assert.rejects(broker.connect(), (err: Error) => {
        assert.ok(err instanceof ConnectionFailed, `got ${err.name}`);
        assert.match(err.message, /amqp:\/\/guest:\*\*\*@127\.0\.0\.1:5672/);
        assert.match(err.message, /access refused/i);
        assert.doesNotMatch(err.message, /Sup3rSecret/);
        assert.equal(err.unreachable, false, "a refusal is not an outage: a supervisor stops rather than retries");
        return true;
      }),
    );
    assert.ok(Date.now() - started < 10_000, "failed fast");
    await broker.close();
    assert.ok(lines.every((line) => !line.includes("Sup3rSecret")), "no log line carries the password");
  });

  test("an unreachable broker fails start-up with a clear error", async () => {
    const broker = new RabbitmqBroker("amqp://guest:guest@127.0.0.1:1/");
    await assert.rejects(broker.connect(), (err: Error) => {
      assert.match(err.message, /cannot connect to RabbitMQ at amqp:\/\/guest:\*\*\*@127\.0\.0\.1:1\/: connection refused/);
      assert.ok(err instanceof ConnectionFailed && err.unreachable, "a refused connection is an outage a supervisor waits out once its group booted");
      return true;
    });
    await broker.close();
  });

  describe("vhosts from the URL", () => {
    const vhost = uniqueName("troupe_vhost");
    before(async () => {
      await rabbitmqctl("add_vhost", vhost);
      await rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*");
    });
    after(async () => {
      await rabbitmqctl("delete_vhost", vhost);
    });

    test("publishes into the vhost the URL names", async () => {
      const url = `amqp://guest:guest@127.0.0.1:5672/${encodeURIComponent(vhost)}`;
      const broker = new RabbitmqBroker(url);
      try {
        await roundTrip(broker, url);
      } finally {
        await broker.close();
      }
    });

    test("a missing vhost is a clear start-up error", async () => {
      const broker = new RabbitmqBroker(`amqp://guest:guest@127.0.0.1:5672/${vhost}_missing`);
      await assert.rejects(broker.connect(), /cannot connect to RabbitMQ at .*_missing: .*vhost/i);
      await broker.close();
    });
  });

  describe("TLS (amqps://)", () => {
    let dir: string;
    let relay: BrokerRelay;
    let ca: Buffer;

    // A TLS terminator in front of the plain listener: RabbitMQ's own TLS listener is not configured here.
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "troupe-tls-"));
      const [key, cert] = [join(dir, "key.pem"), join(dir, "cert.pem")];
      await exec("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"]);
      ca = await readFile(cert);
      relay = new BrokerRelay({ key: await readFile(key), cert: ca });
      await relay.start();
    });

    after(async () => {
      await relay.stop();
      await rm(dir, { recursive: true, force: true });
    });

    test("connects over TLS with the CA given in socketOptions", async () => {
      const url = `amqps://guest:guest@localhost:${relay.port}/`;
      const broker = new RabbitmqBroker(url, { socketOptions: { ca: [ca] } });
      try {
        await roundTrip(broker, "amqp://guest:guest@127.0.0.1:5672/");
      } finally {
        await broker.close();
      }
    });

    test("an untrusted certificate is a clear start-up error", async () => {
      const broker = new RabbitmqBroker(`amqps://guest:guest@localhost:${relay.port}/`);
      await assert.rejects(broker.connect(), /cannot connect to RabbitMQ at amqps:\/\/guest:\*\*\*@localhost:\d+\/: .*certificate/i);
      await broker.close();
    });
  });
});
