/**
 * Part of `npm run build`: copy every Lua script under worker/ and operator/ into dist/ at the same path, so that
 * the compiled module that loads a script finds it beside itself (`new URL("x.lua", import.meta.url)`) in the
 * package, the image and a checkout alike. tsc copies only what it compiles.
 */
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
let copied = 0;
for (const dir of ["worker", "operator"]) {
  for (const file of readdirSync(join(root, dir), { recursive: true }).map(String)) {
    if (!file.endsWith(".lua")) continue;
    const target = join(root, "dist", dir, file);
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(join(root, dir, file), target);
    copied++;
  }
}
if (copied === 0) throw new Error("no Lua script found under worker/ or operator/");
