import { readFileSync } from "node:fs";
const p = JSON.parse(readFileSync(process.argv[2], "utf8"));
const N = Number(process.argv[3] ?? 100000);
const self = new Map(), incl = new Map();
let total = 0;
function walk(node, stack) {
  const f = node.callFrame;
  const key = `${f.functionName || "(anon)"} ${f.url.split("/").slice(-2).join("/")}:${f.lineNumber}`;
  const bytes = (node.selfSize ?? 0);
  total += bytes;
  self.set(key, (self.get(key) ?? 0) + bytes);
  const st = stack.includes(key) ? stack : [...stack, key];
  for (const k of st) incl.set(k, (incl.get(k) ?? 0) + bytes);
  for (const c of node.children) walk(c, st);
}
walk(p.head, []);
console.log("bytes/msg", (total / N).toFixed(0));
const top = (m, n) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n).map(([k, v]) => `${(v / N).toFixed(0).padStart(6)} B/msg ${k}`).join("\n");
console.log("--- self\n" + top(self, 40));
console.log("--- inclusive\n" + top(incl, 40));
