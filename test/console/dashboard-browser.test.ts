import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { Redis } from "ioredis";
import type { Browser } from "playwright-core";
import { Message, RabbitmqBroker, RedisBroker } from "troupe";
import { AMQP_URL, REDIS_URL, fixture, uniqueName } from "../support/env.js";
import { CliProcess } from "../support/process.js";
import { RawAmqp } from "../support/rabbitmq.js";
import { deleteNamespace, redisClient } from "../support/redis.js";
import { until } from "../support/wait.js";
import { XSS_ARGS, launchChromium, screenshot, signIn, startDashboard, watchProblems } from "./dashboard-support.js";

const TOKEN = "dashboard-test-token-0123456789";

describe("the dashboard in Chromium", () => {
  let browser: Browser;
  before(async () => {
    browser = await launchChromium();
  });
  after(async () => {
    await browser.close();
  });

  describe("on Redis", () => {
    const ns = uniqueName("dash");
    const queue = "tally";
    const doneList = `${ns}:done`;
    let client: Redis;
    let broker: RedisBroker;
    let dashboard: Awaited<ReturnType<typeof startDashboard>>;
    let worker: CliProcess;

    before(async () => {
      client = redisClient(REDIS_URL);
      broker = new RedisBroker(REDIS_URL, { namespace: ns });
      // Two dead letters the way a nack leaves them: a tally run the worker will do once requeued, and one whose args are markup.
      const letters = [
        new Message({ queueName: queue, actorName: "tally", args: [REDIS_URL, doneList, "requeued-1", 0], options: { redis_message_id: "dead-tally", retries: 0 } }),
        new Message({ queueName: queue, actorName: "victim", args: XSS_ARGS, options: { redis_message_id: "dead-xss", traceback: XSS_ARGS[1]! } }),
      ];
      for (const [i, m] of letters.entries()) {
        await client.hset(`${ns}:${queue}.XQ.msgs`, m.options.redis_message_id as string, m.encode());
        await client.zadd(`${ns}:${queue}.XQ`, Date.now() - i * 1000, m.options.redis_message_id as string);
      }
      await broker.enqueue(new Message({ queueName: "other", actorName: "nobody", args: XSS_ARGS }));
      await broker.enqueue(new Message({ queueName: "other", actorName: "later", args: [], messageId: "delayed-1" }), { delay: 3_600_000 });
      const env = { TROUPE_REDIS_NAMESPACE: ns, TROUPE_DASHBOARD_TOKEN: TOKEN };
      dashboard = await startDashboard(["-b", REDIS_URL, "-Q", `${queue},other`], env);
      worker = new CliProcess(["worker", fixture("redis-tally"), "-p", "1", "-t", "1", "-Q", queue, "-b", REDIS_URL], { TROUPE_REDIS_NAMESPACE: ns });
    });
    after(async () => {
      await dashboard?.process.kill();
      await worker?.kill();
      await deleteNamespace(client, ns);
      await broker.close();
      client.disconnect();
    });

    test("the overview shows the broker's counts and draws its charts under the strict CSP", async () => {
      const page = await browser.newPage();
      const problems = watchProblems(page);
      const response = await page.goto(dashboard.url);
      assert.equal(response?.status(), 200);
      assert.match(response!.headers()["content-security-policy"]!, /script-src 'self'/);
      const stats = await broker.queueStats(queue);
      const cell = (field: string) => page.locator(`tr[data-queue="${queue}"] [data-field="${field}"]`).innerText();
      assert.equal(await cell("dead"), String(stats.dead));
      assert.equal(await cell("ready"), String(stats.ready));
      assert.equal(await page.locator('tr[data-queue="other"] [data-field="ready"]').innerText(), "1");
      // Three charts drawn by uPlot once the page's script has fetched the history.
      await page.waitForFunction('document.querySelectorAll("#charts .uplot").length === 3');
      await screenshot(page, "overview-redis");
      assert.deepEqual(problems, []);
      await page.close();
    });

    test("markup in a message's args and traceback is shown as text, never run", async () => {
      const page = await browser.newPage();
      const problems = watchProblems(page);
      await page.goto(`${dashboard.url}queues/${queue}/dead`);
      const row = page.locator("tr", { has: page.locator('a:text-is("dead-xss")') });
      assert.match(await row.innerText(), /<script>window\.__xss = 1<\/script>/);
      await screenshot(page, "dead-letters-redis");
      await row.locator("a").first().click();
      await page.waitForURL(/dead-xss$/);
      const args = JSON.parse(await page.locator("#args").innerText()) as string[];
      assert.deepEqual(args, XSS_ARGS);
      assert.match(await page.locator("pre.traceback").innerText(), /onerror=/);
      assert.equal(await page.evaluate("window.__xss"), undefined);
      assert.equal(await page.locator("main img, #injected").count(), 0);
      await screenshot(page, "dead-letter-redis");
      assert.deepEqual(problems, []);
      await page.close();
    });

    test("actions without the token, a session or the CSRF token are refused with 403", async () => {
      const api = await fetch(`${dashboard.url}api/queues/${queue}/dead/requeue`, { method: "POST", body: JSON.stringify({ all: true }) });
      assert.equal(api.status, 403);
      const wrong = await fetch(`${dashboard.url}api/queues/${queue}/dead/purge`, { method: "POST", headers: { Authorization: "Bearer not-the-token" }, body: JSON.stringify({ all: true }) });
      assert.equal(wrong.status, 403);
      const form = await fetch(`${dashboard.url}queues/${queue}/dead/action`, { method: "POST", body: new URLSearchParams({ op: "purge-matching", confirmed: "1" }) });
      assert.equal(form.status, 403);
      // Signed in, but the form lacks the CSRF token a page of the dashboard would carry.
      const login = await fetch(`${dashboard.url}login`, { method: "POST", body: new URLSearchParams({ token: TOKEN }), redirect: "manual" });
      assert.equal(login.status, 303);
      const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
      const forged = await fetch(`${dashboard.url}queues/${queue}/dead/action`, { method: "POST", headers: { Cookie: cookie }, body: new URLSearchParams({ op: "purge-matching", confirmed: "1", csrf: "forged" }) });
      assert.equal(forged.status, 403);
      // A cross-site form post, as a browser labels it, with a valid-looking session.
      const crossSite = await fetch(`${dashboard.url}queues/${queue}/dead/action`, { method: "POST", headers: { Cookie: cookie, "Sec-Fetch-Site": "cross-site" }, body: new URLSearchParams({ op: "purge-matching", confirmed: "1" }) });
      assert.equal(crossSite.status, 403);
      assert.equal(await client.zcard(`${ns}:${queue}.XQ`), 2, "nothing was touched");
    });

    test("a dead letter requeued through the UI is processed by a running worker", async () => {
      const page = await browser.newPage();
      const problems = watchProblems(page);
      await signIn(page, dashboard.url, TOKEN);
      await page.goto(`${dashboard.url}queues/${queue}/dead`);
      await page.check('input[name="id"][value="dead-tally"]');
      await page.click('button[value="requeue-selected"]');
      await page.waitForSelector("form.confirm");
      assert.match(await page.locator("h1").innerText(), /Requeue 1 dead letter of tally/);
      await page.click("form.confirm button");
      await page.waitForSelector("p.message");
      assert.match(await page.locator("p.message").innerText(), /Requeued 1 dead letter onto tally/);
      await until(async () => (await client.lrange(doneList, 0, -1)).includes("requeued-1"), "the worker to run the requeued message", { timeout: 60_000, interval: 50 });
      assert.deepEqual(await client.zrange(`${ns}:${queue}.XQ`, 0, -1), ["dead-xss"]);
      assert.deepEqual(problems, []);
      await page.close();
    });

    test("the ready and delayed pages list what waits, and a delayed message is run now through the UI", async () => {
      const page = await browser.newPage();
      const problems = watchProblems(page);
      await page.goto(`${dashboard.url}queues/other/ready`);
      assert.equal(await page.locator("table.messages tbody tr").count(), 1);
      assert.match(await page.locator("table.messages").innerText(), /nobody[\s\S]*<script>window\.__xss = 1<\/script>/);
      assert.equal(await page.evaluate("window.__xss"), undefined);
      await screenshot(page, "ready-redis");
      await signIn(page, dashboard.url, TOKEN);
      await page.goto(`${dashboard.url}queues/other/delayed`);
      assert.match(await page.locator("table.messages").innerText(), /later[\s\S]*in (59|60)m/);
      await screenshot(page, "delayed-redis");
      const id = await page.locator('input[name="id"]').first().getAttribute("value");
      await page.check(`input[name="id"][value="${id}"]`);
      await page.click('button[value="run-now"]');
      await page.click("form.confirm button");
      assert.match(await page.locator("p.message").innerText(), /Moved 1 of 1 delayed message to the end of other/);
      assert.deepEqual(await client.lrange(`${ns}:other`, 0, -1).then((ids) => ids.length), 2);
      assert.equal(await client.llen(`${ns}:other.DQ`), 0);
      assert.deepEqual(problems, []);
      await page.close();
    });

    test("--read-only shows no action and refuses them even with the token", async () => {
      const readOnly = await startDashboard(["-b", REDIS_URL, "-Q", queue, "--read-only"], { TROUPE_REDIS_NAMESPACE: ns, TROUPE_DASHBOARD_TOKEN: TOKEN });
      try {
        const page = await browser.newPage();
        await page.goto(`${readOnly.url}queues/${queue}/dead`);
        await page.waitForSelector(".mode-read-only");
        assert.equal(await page.locator("button[name=op], input[name=id], a[href$='/login']").count(), 0);
        await page.close();
        const api = await fetch(`${readOnly.url}api/queues/${queue}/dead/purge`, { method: "POST", headers: { Authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ all: true }) });
        assert.equal(api.status, 403);
        assert.match(((await api.json()) as { error: string }).error, /read-only/);
        assert.equal(await client.zcard(`${ns}:${queue}.XQ`), 1);
      } finally {
        await readOnly.process.kill();
      }
    });
  });

  test("on RabbitMQ: counts, escaped args and a requeue through the UI, with the broker password nowhere on the page", async () => {
    const queue = uniqueName("dash");
    const raw = await RawAmqp.open();
    const broker = new RabbitmqBroker(AMQP_URL);
    const dead = { "x-dead-letter-exchange": "", "x-dead-letter-routing-key": `${queue}.XQ` };
    await raw.channel.assertQueue(queue, { durable: true, arguments: dead });
    await raw.channel.assertQueue(`${queue}.DQ`, { durable: true, arguments: dead });
    await raw.channel.assertQueue(`${queue}.XQ`, { durable: true });
    for (let i = 0; i < 3; i++) {
      const body = new Message({ queueName: queue, actorName: "victim", args: [...XSS_ARGS, i], messageId: `${queue}-m${i}` }).encode();
      raw.channel.sendToQueue(`${queue}.XQ`, Buffer.from(body), { persistent: true });
    }
    const dashboard = await startDashboard(["-b", AMQP_URL, "-Q", queue], { TROUPE_DASHBOARD_TOKEN: TOKEN, TROUPE_RABBITMQ_MANAGEMENT_URL: undefined });
    const page = await browser.newPage();
    try {
      const problems = watchProblems(page);
      await page.goto(dashboard.url);
      await until(async () => (await page.reload(), (await page.locator(`tr[data-queue="${queue}"] [data-field="dead"]`).innerText()) === "3"), "the overview to count 3 dead letters", { interval: 100 });
      assert.doesNotMatch(await page.content(), /guest:guest/, "the broker password is not on the page");
      await page.goto(`${dashboard.url}queues/${queue}/ready`);
      assert.match(await page.locator("p.note").innerText(), /cannot show waiting messages without taking them/);
      await page.goto(dashboard.url);
      await screenshot(page, "overview-rabbitmq");

      await signIn(page, dashboard.url, TOKEN);
      await page.goto(`${dashboard.url}queues/${queue}/dead`);
      assert.equal(await page.locator("table.letters tbody tr").count(), 3);
      assert.match(await page.locator("table.letters").innerText(), /<script>window\.__xss = 1<\/script>/);
      await page.check(`input[name="id"][value="${queue}-m1"]`);
      await page.click('button[value="requeue-selected"]');
      await page.click("form.confirm button");
      assert.match(await page.locator("p.message").innerText(), /Requeued 1 dead letter/);
      assert.equal(await page.evaluate("window.__xss"), undefined);
      const stats = await broker.queueStats(queue);
      assert.equal(stats.ready, 1);
      assert.equal(stats.dead, 2);
      const back = await raw.channel.get(queue, { noAck: true });
      assert.ok(back);
      assert.equal(Message.decode(back.content).messageId, `${queue}-m1`);
      assert.deepEqual(problems, []);
    } finally {
      await page.close();
      await dashboard.process.kill();
      await broker.close();
      await raw.deleteQueues(queue);
      await raw.close();
    }
  });
});
