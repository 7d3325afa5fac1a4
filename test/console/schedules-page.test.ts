import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import { after, before, describe, test } from "node:test";
import { RedisBroker, Schedule, Scheduler, actor, createDashboard, scheduleStoreFor, type Dashboard } from "troupe";
import { REDIS_URL, uniqueName } from "../support/env.js";
import { deleteNamespace, redisClient } from "../support/redis.js";
import { until } from "../support/wait.js";
import { launchChromium, screenshot, signIn, watchProblems } from "./dashboard-support.js";

const TOKEN = "schedules-test-token-0123456789ab";

describe("the console's schedules page, against real workers' schedules on Redis, over HTTP and in Chromium", () => {
  const ns = uniqueName("dash-sched");
  const queue = uniqueName("sched_page");
  // Markup in a schedule's name (free text) must come out as text.
  const name = `${uniqueName("digest")}-<img src=x onerror=alert(1)>`;
  const client = redisClient(REDIS_URL);
  const broker = new RedisBroker(REDIS_URL, { namespace: ns });
  const ticked = actor(uniqueName("page_ticked"), () => undefined, { queue });
  const scheduler = new Scheduler(scheduleStoreFor(broker), [new Schedule(ticked, { every: "1s" }, { name, args: ["daily"] })]);
  let dashboard: Dashboard;
  let server: Server;
  let root: string;
  let host: string;

  before(async () => {
    await broker.connect();
    await scheduler.start();
    server = createServer();
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    host = `127.0.0.1:${(server.address() as { port: number }).port}`;
    root = `http://${host}/troupe`;
    dashboard = createDashboard({ broker, token: TOKEN, queues: [queue], basePath: "/troupe", allowedHosts: [host], interval: 1000 });
    server.on("request", (req, res) => dashboard.handler(req, res));
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await dashboard.close();
    await scheduler.stop();
    await broker.close();
    await deleteNamespace(client, ns);
    client.disconnect();
  });

  const page = async (cookie?: string) => (await fetch(`${root}/schedules`, { headers: { Accept: "text/html", ...(cookie ? { Cookie: cookie } : {}) } })).text();
  const row = (text: string) => text.slice(text.indexOf("<tr data-schedule="), text.indexOf("</tr>", text.indexOf("<tr data-schedule=")));

  test("lists each schedule with its next fire times and last fire, escaped; the JSON API gives the same rows", async () => {
    await until(async () => client.hexists(`${ns}:schedules`, name), "a first fire");
    const text = await page();
    assert.doesNotMatch(text, /<img src=x/, "no markup from the name");
    assert.match(text, /digest_[^<]*-&lt;img src=x onerror=alert\(1\)&gt;/);
    const shown = row(text);
    assert.match(shown, new RegExp(`>${ticked.actorName}<`));
    assert.match(shown, /every 1s/);
    assert.equal((shown.match(/data-field="next"/g) ?? []).length, 1);
    assert.equal((row(text).split('data-field="next"')[1]!.split("</td>")[0]!.match(/<time /g) ?? []).length, 3, "three next fire times");
    assert.match(shown.split('data-field="last"')[1]!, /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ[\s\S]*by <span class="mono">[^<]+:\d+<\/span>/);
    assert.match(shown, /<span class="chip">active<\/span>/);
    assert.doesNotMatch(shown, /<button/, "no actions without signing in");
    assert.match(text, new RegExp(`from redis://127\\.0\\.0\\.1:6379/0 \\(namespace ${ns}\\)`));

    const rows = (await (await fetch(`${root}/api/schedules`)).json()) as { name: string; next: string[]; lastFired?: { tick: number } }[];
    assert.deepEqual(rows.map((r) => r.name), [name]);
    assert.equal(rows[0]!.next.length, 3);
    assert.ok(rows[0]!.lastFired!.tick > 0);
  });

  test("pause and trigger need a signed-in session with its CSRF token and a confirmation; the API takes the bearer token", async () => {
    const form = (fields: Record<string, string>, cookie?: string) =>
      fetch(`${root}/schedules/action`, { method: "POST", headers: { Accept: "text/html", ...(cookie ? { Cookie: cookie } : {}) }, body: new URLSearchParams(fields), redirect: "manual" });
    assert.equal((await form({ op: "pause", name, confirmed: "1" })).status, 403, "not signed in");
    const login = await fetch(`${root}/login`, { method: "POST", body: new URLSearchParams({ token: TOKEN }), redirect: "manual" });
    const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
    const signedIn = await page(cookie);
    const csrf = /name="csrf" value="([^"]+)"/.exec(row(signedIn))![1]!;
    assert.match(row(signedIn), /<button name="op" value="pause">Pause<\/button>/);
    assert.equal((await form({ op: "pause", name, confirmed: "1", csrf: "forged" }, cookie)).status, 403, "a forged CSRF token");

    const confirm = await (await form({ op: "pause", name, csrf }, cookie)).text();
    assert.match(confirm, /<h1>Pause digest_[^<]*-&lt;img src=x onerror=alert\(1\)&gt; on every worker\?<\/h1>/);
    assert.equal(await client.hexists(`${ns}:schedules.paused`, name), 0, "nothing changed before the confirmation");
    assert.match(await (await form({ op: "pause", name, csrf, confirmed: "1" }, cookie)).text(), /paused: no worker fires its ticks/);
    assert.equal(await client.hexists(`${ns}:schedules.paused`, name), 1);
    assert.match(row(await page(cookie)), /<span class="chip warn">paused<\/span>[\s\S]*<button name="op" value="resume">Resume<\/button>/);

    const bearer = { Authorization: `Bearer ${TOKEN}` };
    assert.equal((await fetch(`${root}/api/schedules/${encodeURIComponent(name)}/resume`, { method: "POST" })).status, 403);
    const resumed = await fetch(`${root}/api/schedules/${encodeURIComponent(name)}/resume`, { method: "POST", headers: bearer });
    assert.deepEqual(await resumed.json(), { changed: true });
    assert.equal(await client.hexists(`${ns}:schedules.paused`, name), 0);

    const triggered = (await (await fetch(`${root}/api/schedules/${encodeURIComponent(name)}/trigger`, { method: "POST", headers: bearer })).json()) as { messageId: string };
    const body = JSON.parse((await until(async () => (await client.hvals(`${ns}:${queue}.msgs`)).find((b) => b.includes(triggered.messageId)), "the triggered message"))) as { args: unknown[]; options: Record<string, unknown> };
    assert.deepEqual(body.args, ["daily"]);
    assert.equal(body.options.schedule_triggered, true);
    assert.equal(body.options.schedule, name);
    assert.equal((await fetch(`${root}/api/schedules/nope/trigger`, { method: "POST", headers: bearer })).status, 404);
    assert.equal((await fetch(`${root}/api/schedules/${encodeURIComponent(name)}/explode`, { method: "POST", headers: bearer })).status, 400);
  });

  test("in Chromium: the page runs under its CSP with the name as text, and a signed-in user pauses and resumes with the buttons", async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage();
      const problems = watchProblems(page);
      await page.goto(`${root}/schedules`);
      const shown = page.locator(`tr[data-schedule="${name}"]`);
      assert.match(await shown.innerText(), /-<img src=x onerror=alert\(1\)>/, "the name as the text it is");
      assert.equal(await page.locator("tr[data-schedule] img").count(), 0, "no element made from the name");
      assert.equal(await shown.locator("button").count(), 0, "no actions without signing in");

      await signIn(page, `${root}/`, TOKEN);
      await page.goto(`${root}/schedules`);
      await shown.locator('button[value="pause"]').click();
      await page.click("form.confirm button");
      assert.match(await page.locator("p.message").innerText(), /paused/);
      assert.equal(await client.hexists(`${ns}:schedules.paused`, name), 1);
      await page.goto(`${root}/schedules`);
      assert.match(await shown.locator(".chip").innerText(), /paused/);
      await screenshot(page, "schedules-paused");
      await shown.locator('button[value="resume"]').click();
      await page.click("form.confirm button");
      assert.equal(await client.hexists(`${ns}:schedules.paused`, name), 0);
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
    }
  });
});
