import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { repoRoot } from "../support/env.js";
import { CliProcess } from "../support/process.js";
import { until } from "../support/wait.js";

/** Where the browser tests leave their screenshots (docs/ takes two of them). */
export const SCREENSHOTS = join(repoRoot, "dist", "test-output", "dashboard");

/** The system Chromium (scripts/services.mjs installs Debian's and exports its path); never a downloaded one. */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: process.env.TROUPE_CHROMIUM ?? "/usr/bin/chromium", headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-extensions", "--no-first-run", "--disable-background-networking"] });
}

/** A `troupe dashboard` process on a free loopback port, and its URL once it listens. */
export async function startDashboard(args: string[], env: Record<string, string | undefined> = {}): Promise<{ process: CliProcess; url: string }> {
  const process = new CliProcess(["dashboard", "--port", "0", "--interval", "200ms", ...args], env);
  const line = await until(() => process.text.find((l) => l.startsWith("troupe dashboard: http")) ?? (process.alive ? undefined : `exited: ${process.output}`), "the dashboard to listen");
  const url = /http:\/\/\S+/.exec(line)?.[0];
  if (!url) throw new Error(`the dashboard did not start:\n${process.output}`);
  return { process, url };
}

/**
 * Page errors and Content-Security-Policy violations the page reports: a test that sees none knows the page's
 * scripts ran under the strict CSP and nothing inline was attempted.
 */
export function watchProblems(page: Page): string[] {
  const problems: string[] = [];
  page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console: ${msg.text()}`);
  });
  return problems;
}

/** Sign `page` in with the dashboard's token through its login form, as a user does. */
export async function signIn(page: Page, dashboardUrl: string, token: string): Promise<void> {
  await page.goto(`${dashboardUrl}login`);
  await page.fill('input[name="token"]', token);
  await page.click("form.login button");
  await page.waitForSelector(".mode-signed-in");
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
}

/** Markup an attacker might put in a message's args: shown as text, it must never run or become an element. */
export const XSS_ARGS = ["<script>window.__xss = 1</script>", '"><img src=x onerror="window.__xss = 2">', "</pre><b id=injected>bold</b>"];
