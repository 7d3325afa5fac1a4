cd /work/main
f=dist/bench/worker-process.js
grep -q __openSync $f && exit 0
sed -i 's|stdio: \["ignore", "ignore", "pipe"\]|stdio: ["ignore", process.env.EXP_OUT ? __openSync(process.env.EXP_OUT, "w") : "ignore", "pipe"]|' $f
sed -i '1i import { openSync as __openSync } from "node:fs";' $f
sed -i 's|spawn(process.execPath, args|spawn(process.execPath, [...(process.env.EXP_NODEARGS ? process.env.EXP_NODEARGS.split(" ") : []), ...args]|' $f
