import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, get, type IncomingMessage, type Server } from "node:http";
import type { Redis } from "ioredis";
import { Message, RedisBroker, RedisResultBackend, createDashboard, type Dashboard } from "troupe";
import { REDIS_URL, uniqueName } from "../support/env.js";
import { deleteNamespace, redisClient } from "../support/redis.js";

const TOKEN = "http-test-token-0123456789abcdef";

interface Letter {
  id: string;
  message?: { actor_name: string };
}

/** The dashboard as a user mounts it: a handler under /troupe in a server of their own, with a password in the broker URL. */
describe("the dashboard's handler, mounted under a base path", () => {
  const ns = uniqueName("dashhttp");
  const queue = "mail";
  let client: Redis;
  let broker: RedisBroker;
  let dashboard: Dashboard;
  let server: Server;
  let root: string;
  let host: string;
  let results: RedisResultBackend;

  before(async () => {
    client = redisClient(REDIS_URL);
    for (let i = 0; i < 60; i++) {
      const id = `l${String(i).padStart(2, "0")}`;
      const m = new Message({ queueName: queue, actorName: i % 2 ? "send_mail" : "render", args: [i], options: { redis_message_id: id } });
      await client.hset(`${ns}:${queue}.XQ.msgs`, id, m.encode());
      await client.zadd(`${ns}:${queue}.XQ`, 1_700_000_000_000 + i, id);
    }
    // Redis here has no password: ioredis' AUTH fails softly, and the URL's password must show nowhere.
    broker = new RedisBroker(REDIS_URL.replace("redis://", "redis://:hunter2secret@"), { namespace: ns });
    server = createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    host = `127.0.0.1:${(server.address() as { port: number }).port}`;
    root = `http://${host}/troupe`;
    results = new RedisResultBackend({ url: REDIS_URL, namespace: `${ns}-results` });
    dashboard = createDashboard({ broker, results, token: TOKEN, queues: [queue], basePath: "/troupe", allowedHosts: [host], interval: 100 });
    server.on("request", (req, res) => (req.url?.startsWith("/troupe") ? dashboard.handler(req, res) : res.writeHead(404).end()));
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await dashboard.close();
    await results.close();
    await broker.close();
    await deleteNamespace(client, ns);
    client.disconnect();
  });

  test("message pages show the stored result, a stored failure, or that none is stored, escaped", async () => {
    const queue = "results_q";
    const [done, failed, pending] = ["done", "failed", "pending"].map((id) => new Message({ queueName: queue, actorName: "render", args: [id], messageId: `res-${id}` }));
    for (const m of [done!, failed!, pending!]) await broker.enqueue(m);
    await results.storeResult(done!, { html: "<b>bold</b>" }, 60_000);
    await results.storeException(failed!, { name: "ValueError", message: "<img src=x onerror=alert(1)>" }, 60_000);
    const ids = await client.lrange(`${ns}:${queue}`, 0, -1);
    const page = async (i: number) => (await fetch(`${root}/queues/${queue}/ready/${ids[i]}`, { headers: { Accept: "text/html" } })).text();
    assert.match(await page(0), /<h2>Stored result<\/h2><pre class="json" id="result">\{\n  &quot;html&quot;: &quot;&lt;b&gt;bold&lt;\/b&gt;&quot;\n\}<\/pre>/);
    assert.match(await page(1), /The actor raised ValueError: &lt;img src=x onerror=alert\(1\)&gt;/);
    assert.match(await page(2), /None stored/);
    await client.del(...[done!, failed!].map((m) => results.buildMessageKey(m)));
  });

  test("pages carry the base path, strict security headers and no broker password", async () => {
    const res = await fetch(`${root}/`);
    assert.equal(res.status, 200);
    const page = await res.text();
    assert.match(page, /href="\/troupe\/queues\/mail\/dead"/);
    assert.match(page, /src="\/troupe\/static\/uplot\.js"/);
    assert.doesNotMatch(page, /hunter2secret/);
    assert.match(page, /redis:\/\/:\*\*\*@127\.0\.0\.1/);
    assert.match(page, new RegExp(`${broker.workerId} <span class="chip">this dashboard</span>`), "its own heartbeat is marked");
    const csp = res.headers.get("content-security-policy")!;
    for (const directive of ["default-src 'none'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'self'"]) assert.ok(csp.includes(directive), csp);
    assert.equal(res.headers.get("x-content-type-options"), "nosniff");
    const uplot = await fetch(`${root}/static/uplot.js`);
    assert.equal(uplot.status, 200);
    assert.match(uplot.headers.get("content-type")!, /javascript/);
    assert.ok((await uplot.text()).includes("uPlot"));
  });

  test("a Host that is not the one it serves is refused (DNS rebinding)", async () => {
    // fetch() will not send another Host than the URL's; node:http will, as a rebinding browser would.
    const [, port] = host.split(":");
    const res = await new Promise<IncomingMessage>((resolve, reject) => get({ host: "127.0.0.1", port: Number(port), path: "/troupe/api/history", headers: { Host: `attacker.example:${port}` } }, resolve).on("error", reject));
    res.resume();
    assert.equal(res.statusCode, 421);
  });

  test("the JSON API pages by cursor, filters by actor and requeues with the bearer token", async () => {
    const first = (await (await fetch(`${root}/api/queues/${queue}/dead?limit=25`)).json()) as { total: number; next: number; letters: Letter[] };
    assert.equal(first.total, 60);
    assert.equal(first.letters.length, 25);
    assert.equal(first.letters[0]!.id, "l59", "newest first");
    const second = (await (await fetch(`${root}/api/queues/${queue}/dead?limit=25&cursor=${first.next}`)).json()) as { letters: Letter[] };
    assert.equal(second.letters[0]!.id, "l34");
    const mail = (await (await fetch(`${root}/api/queues/${queue}/dead?limit=100&actor=send_mail`)).json()) as { letters: Letter[] };
    assert.equal(mail.letters.length, 30);
    assert.ok(mail.letters.every((l) => l.message?.actor_name === "send_mail"));
    const bad = await fetch(`${root}/api/queues/${queue}/dead?older-than=soon`);
    assert.equal(bad.status, 400);

    const requeue = await fetch(`${root}/api/queues/${queue}/dead/requeue`, { method: "POST", headers: { Authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ ids: ["l07", "nope"] }) });
    assert.equal(requeue.status, 200);
    assert.deepEqual(await requeue.json(), { requeued: 1, missing: ["nope"] });
    assert.deepEqual(await client.lrange(`${ns}:${queue}`, 0, -1), ["l07"]);
    const shown = await fetch(`${root}/queues/${queue}/dead/l08`, { headers: { Accept: "text/html" } });
    assert.match(await shown.text(), /Dead letter <span class="mono">l08<\/span>/);
    const gone = await fetch(`${root}/api/queues/${queue}/dead/l07`);
    assert.equal(gone.status, 404);
  });

  test("ready and delayed messages are paged next-first, searched, deleted and run now, leaving a message a worker holds alone", async () => {
    const ready = "work";
    for (let i = 0; i < 40; i++) await broker.enqueue(new Message({ queueName: ready, actorName: i % 4 ? "resize" : "notify", args: [i], messageId: `ready-${i}` }));
    for (let i = 0; i < 3; i++) await broker.enqueue(new Message({ queueName: ready, actorName: "remind", args: [i], messageId: `later-${i}` }), { delay: 3_600_000 * (i + 1) });
    // A delayed message a worker fetched and holds until due: its body is stored, its id is in no list.
    await client.hset(`${ns}:${ready}.DQ.msgs`, "held-1", new Message({ queueName: `${ready}.DQ`, actorName: "remind", args: [], options: { redis_message_id: "held-1", eta: Date.now() + 60_000 } }).encode());
    type Listed = { total: number; held: number; next?: number; messages: { id: string; eta?: number; message: { message_id: string; actor_name: string; queue_name: string } }[] };
    const list = async (kind: string, query = "") => (await (await fetch(`${root}/api/queues/${ready}/${kind}${query}`)).json()) as Listed;

    const first = await list("ready", "?limit=10");
    assert.equal(first.total, 40);
    assert.deepEqual(first.messages.map((m) => m.message.message_id), Array.from({ length: 10 }, (_, i) => `ready-${i}`), "next to run first");
    assert.equal(first.next, 10);
    const byActor = await list("ready", "?limit=100&search=notify");
    assert.equal(byActor.messages.length, 10);
    const byId = await list("ready", "?search=ready-33");
    assert.deepEqual(byId.messages.map((m) => m.message.message_id), ["ready-33"]);

    const delayed = await list("delayed");
    assert.equal(delayed.total, 3);
    assert.equal(delayed.held, 1);
    assert.ok(delayed.messages.every((m) => m.eta! > Date.now()));
    const html = await (await fetch(`${root}/queues/${ready}/delayed`, { headers: { Accept: "text/html" } })).text();
    assert.match(html, /1 more delayed message is held by workers/);
    assert.match(html, /in 60m<\/td>/);

    const bearer = { Authorization: `Bearer ${TOKEN}` };
    const soon = delayed.messages[0]!.id;
    const run = await fetch(`${root}/api/queues/${ready}/delayed/run-now`, { method: "POST", headers: bearer, body: JSON.stringify({ ids: [soon, "held-1"] }) });
    assert.equal(run.status, 200);
    assert.deepEqual(await run.json(), { done: [soon], missing: ["held-1"] });
    assert.equal((await client.lrange(`${ns}:${ready}`, -1, -1))[0], soon, "at the end of the ready queue");
    const moved = Message.decode((await client.hget(`${ns}:${ready}.msgs`, soon))!);
    assert.equal(moved.queueName, ready);
    assert.equal(moved.options.eta, undefined);
    assert.equal(moved.messageId, delayed.messages[0]!.message.message_id);
    assert.equal(await client.hexists(`${ns}:${ready}.DQ.msgs`, soon), 0);
    assert.equal(await client.hexists(`${ns}:${ready}.DQ.msgs`, "held-1"), 1, "the held message is left to its worker");

    const victim = first.messages[3]!.id;
    const deleted = await fetch(`${root}/api/queues/${ready}/ready/delete`, { method: "POST", headers: bearer, body: JSON.stringify({ ids: [victim] }) });
    assert.deepEqual(await deleted.json(), { done: [victim], missing: [] });
    assert.equal((await list("ready")).total, 40, "39 left plus the one run now");
    const refused = await fetch(`${root}/api/queues/${ready}/ready/run-now`, { method: "POST", headers: bearer, body: JSON.stringify({ ids: [first.messages[0]!.id] }) });
    assert.equal(refused.status, 400, "run now is for delayed messages");
    const anonymous = await fetch(`${root}/api/queues/${ready}/ready/delete`, { method: "POST", body: JSON.stringify({ ids: [first.messages[0]!.id] }) });
    assert.equal(anonymous.status, 403);
  });

  test("wrong tokens are counted: after ten in a minute sign-in answers 429", async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++) statuses.push((await fetch(`${root}/login`, { method: "POST", body: new URLSearchParams({ token: `wrong-${i}` }) })).status);
    assert.deepEqual(statuses, [...Array(10).fill(403), 429]);
    const right = await fetch(`${root}/login`, { method: "POST", body: new URLSearchParams({ token: TOKEN }), redirect: "manual" });
    assert.equal(right.status, 429, "not even the right token is checked until the minute is over");
  });
});
