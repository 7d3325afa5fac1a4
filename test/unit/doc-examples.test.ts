import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "../support/env.js";

const run = promisify(execFile);

/** A ```ts block of a Markdown file, with the hidden context (`<!-- ts-context … -->`) written just above it. */
interface Example {
  doc: string;
  line: number;
  code: string;
  context: string;
}

/** Every ```ts block of `text`; the comment ending on the line before a fence gives that block its context. */
function examplesOf(doc: string, text: string): Example[] {
  const lines = text.split("\n");
  const examples: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== "```ts") continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && lines[i]!.trim() !== "```"; i++) body.push(lines[i]!);
    let context = "";
    if (start > 0 && lines[start - 1]!.trim() === "-->") {
      let open = start - 1;
      while (open > 0 && !lines[open]!.startsWith("<!-- ts-context")) open--;
      context = lines.slice(open + 1, start - 1).join("\n");
    }
    examples.push({ doc, line: start + 1, code: body.join("\n"), context });
  }
  return examples;
}

test("every TypeScript example in the README and docs/ compiles under strict mode against the package's types", { timeout: 120_000 }, async () => {
  const docs = ["README.md", ...(await readdir(join(repoRoot, "docs"))).filter((f) => f.endsWith(".md")).map((f) => join("docs", f))];
  const examples = (await Promise.all(docs.map(async (doc) => examplesOf(doc, await readFile(join(repoRoot, doc), "utf8"))))).flat();
  assert.ok(examples.length >= 10, `found only ${examples.length} examples`);

  // Inside the checkout so that "troupe" and the libraries resolve as they do for the repository's own code.
  const dir = join(repoRoot, ".tmp", "doc-examples");
  await rm(dir, { recursive: true, force: true });
  try {
    for (const example of examples) {
      // An example that opens with "// name.ts" is that module, for the next examples of its page to import.
      const named = /^\/\/ ([\w-]+)\.ts\b/.exec(example.code)?.[1];
      const file = join(dir, basename(example.doc, ".md"), `${named ?? `line-${example.line}`}.ts`);
      await mkdir(join(file, ".."), { recursive: true });
      await writeFile(file, `${example.context}\n${example.code}\nexport {};\n`);
    }
    await writeFile(
      join(dir, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "ES2022",
          module: "NodeNext",
          moduleResolution: "NodeNext",
          lib: ["ES2023"],
          types: ["node"],
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          noUnusedLocals: false,
          paths: { troupe: ["../../worker/index.ts"], "troupe/operator": ["../../operator/index.ts"] },
        },
        include: ["**/*.ts"],
      }),
    );
    const tsc = join(repoRoot, "node_modules", "typescript", "bin", "tsc");
    const outcome = await run(process.execPath, [tsc, "-p", join(dir, "tsconfig.json")], { cwd: repoRoot, maxBuffer: 16 << 20 }).then(
      () => "",
      (err: { stdout?: string; message: string }) => err.stdout || err.message,
    );
    // Errors name the page and the line its block starts on (e.g. .tmp/doc-examples/README/line-204.ts).
    assert.equal(outcome, "", `documentation examples that do not compile:\n${outcome}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
