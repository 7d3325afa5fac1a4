import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ConnectionFailed, MemcachedRateLimiterBackend, MemcachedResultBackend, Message, WindowRateLimiter } from "troupe";
import { uniqueName } from "../support/env.js";
import { OwnMemcached } from "./own-memcached.js";

describe("memcached with SASL (memcached -S, PLAIN, a sasldb of the test's own)", () => {
  let server: OwnMemcached;
  const user = { username: "troupe", password: "p@ss:w0rd/é" };

  before(async () => {
    server = await OwnMemcached.start(undefined, user);
  });
  after(() => server.stop());

  test("the URL's percent-encoded credentials authenticate results and limits", async () => {
    const url = `memcached://${user.username}:${encodeURIComponent(user.password)}@${server.address}`;
    const results = new MemcachedResultBackend({ url, namespace: uniqueName("mcsasl") });
    const limits = new MemcachedRateLimiterBackend({ url });
    try {
      await results.connect();
      await limits.connect();
      const message = new Message({ queueName: "default", actorName: "sasl", messageId: uniqueName("sasl") });
      await results.storeResult(message, { ok: 1 });
      assert.deepEqual(await results.getResult(message), { ok: 1 });
      const window = new WindowRateLimiter(uniqueName("mcsaslwin"), { backend: limits, limit: 2, window: 5 });
      assert.deepEqual([await window.tryAcquire(), await window.tryAcquire(), await window.tryAcquire()], [true, true, false]);
    } finally {
      await results.close();
      await limits.close();
    }
  });

  test("a wrong password or none fails connect() with ConnectionFailed, the password redacted", async () => {
    for (const url of [`memcached://${user.username}:wrong-pw-123@${server.address}`, `memcached://${server.address}`]) {
      const backend = new MemcachedResultBackend({ url });
      try {
        await assert.rejects(backend.connect(), (err: unknown) => {
          assert.ok(err instanceof ConnectionFailed, String(err));
          assert.match(err.message, new RegExp(`memcached at memcached://(${user.username}:\\*\\*\\*@)?127\\.0\\.0\\.1:${server.port}`));
          assert.doesNotMatch(err.message, /wrong-pw-123/);
          return true;
        });
      } finally {
        await backend.close();
      }
    }
  });
});
