// Bounce parser timing: a 25 MiB pathological report (test/support/pathological-bounce.ts, two variants) and the
// median time per message over the labelled corpus. Run: npm run bench:bounce
// The TypeScript is bundled with esbuild first (the parser's modules import each other without file extensions,
// which Node's type stripping does not resolve).
import { build } from "esbuild";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dir = mkdtempSync(path.join(tmpdir(), "bench-bounce-"));
const out = path.join(dir, "bundle.mjs");
await build({
  stdin: {
    contents: 'export { parseBounce } from "./src/inbound/bounce.ts"; export { pathologicalBounce } from "./test/support/pathological-bounce.ts";',
    resolveDir: root,
    loader: "ts",
  },
  bundle: true,
  platform: "node",
  format: "esm",
  outfile: out,
  logLevel: "warning",
});
const { parseBounce, pathologicalBounce } = await import(pathToFileURL(out).href);
rmSync(dir, { recursive: true, force: true });

for (const bodyFirst of [false, true]) {
  const raw = pathologicalBounce(25 * 1024 * 1024, bodyFirst);
  const times = [];
  let report;
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    report = parseBounce(raw);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  console.log(`pathological ${bodyFirst ? "body-first " : "header-heavy"} ${(raw.length / 1048576).toFixed(1)} MiB: median ${Math.round(times[1])} ms of 3 (${report.recipients.length} recipients kept)`);
}

const corpus = path.join(root, "test/fixtures/bounces");
const files = readdirSync(corpus).filter((f) => f.endsWith(".eml")).map((f) => readFileSync(path.join(corpus, f)));
for (const f of files) parseBounce(f);
const per = files.map((f) => {
  const t0 = performance.now();
  for (let i = 0; i < 5; i++) parseBounce(f);
  return (performance.now() - t0) / 5;
});
per.sort((a, b) => a - b);
console.log(`corpus: ${files.length} messages, median ${per[Math.floor(per.length / 2)].toFixed(2)} ms, p99 ${per[Math.floor(per.length * 0.99)].toFixed(2)} ms, max ${per[per.length - 1].toFixed(2)} ms per message`);
