import { readFileSync } from "node:fs";
const p = JSON.parse(readFileSync(process.argv[2], "utf8"));
const self = new Map(); let total = 0;
const ids = new Map();
(function walk(n, stack) {
  const f = n.callFrame; const name = `${f.functionName || "(anon)"} ${f.url.split("/").slice(-2).join("/")}:${f.lineNumber + 1}`;
  const st = [name, ...stack];
  if (n.selfSize) { self.set(name, (self.get(name) ?? 0) + n.selfSize); total += n.selfSize; ids.set(name, st.slice(0, 6).join(" < ")); }
  for (const c of n.children) walk(c, st);
})(p.head, []);
console.log("total KB", (total / 1024).toFixed(0));
for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(process.argv[3] ?? 25))) console.log((v / 1024).toFixed(0).padStart(7), "KB ", process.argv[4] ? ids.get(k) : k);
