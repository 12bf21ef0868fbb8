// Checks that every ```ts block of the given pages (this README and the
// guide's flow pages) is an excerpt of a file of this package: preceded by
// <!-- excerpt: src/file.ts -->, its lines (indentation aside; blank lines
// and `// …` skipped) appear in that file in order. So the pages cannot
// drift from the code that CI type-checks and runs. The path in the comment
// is relative to this package, whichever page it is on. (```typescript
// blocks are illustrations, not excerpts, and are not checked here.)
//
//   node check-excerpts.mjs README.md ../../../docs/flows/*.md

import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const packageDir = dirname(fileURLToPath(import.meta.url));

let failures = 0;
let count = 0;
for (const page of process.argv.slice(2)) {
  const lines = readFileSync(page, "utf8").split("\n");
  let excerptOf;
  for (let i = 0; i < lines.length; i++) {
    const comment = /^<!--\s*excerpt:\s*(\S+)\s*-->$/.exec(lines[i].trim());
    if (comment) {
      excerptOf = comment[1];
      continue;
    }
    const fence = /^```(\S*)/.exec(lines[i]);
    if (!fence) {
      if (lines[i].trim()) excerptOf = undefined;
      continue;
    }
    const start = i;
    const body = [];
    for (i++; i < lines.length && !lines[i].startsWith("```"); i++) body.push(lines[i]);
    if (i === lines.length) {
      console.log(`FAIL ${page}:${start + 1}: the code block is never closed`);
      failures++;
      break;
    }
    const source = excerptOf;
    excerptOf = undefined;
    if (fence[1] !== "ts") continue;
    if (!source) {
      console.log(`FAIL ${page}:${start + 1}: a ts block is an excerpt: put <!-- excerpt: src/file.ts --> right before it`);
      failures++;
      continue;
    }
    let fileLines;
    try {
      fileLines = readFileSync(join(packageDir, source), "utf8").split("\n").map((l) => l.trim());
    } catch (err) {
      console.log(`FAIL ${page}:${start + 1}: ${err.message}`);
      failures++;
      continue;
    }
    let at = 0;
    let ok = true;
    for (const line of body) {
      const want = line.trim();
      if (!want || want === "// …") continue;
      while (at < fileLines.length && fileLines[at] !== want) at++;
      if (at === fileLines.length) {
        console.log(`FAIL ${page}:${start + 1}: excerpt of ${source}: \`${want}\` is not in the file (in this order)`);
        failures++;
        ok = false;
        break;
      }
      at++;
    }
    if (ok) count++;
  }
}
console.log(`excerpts: ${count} ok, ${failures} failed`);
process.exit(failures ? 1 : 0);
