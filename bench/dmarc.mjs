// DMARC aggregate report handling cost: gunzip and parse a Google-style report of 10,000 sources (the shape from
// test/support/report-builders.ts), and refuse a 1 GiB zip bomb. Run: npm run bench:dmarc
// The TypeScript modules import each other without extensions, so they are bundled with esbuild (wrangler's
// dependency) into a temporary file first. Env: BENCH_SOURCES (default 10000), BENCH_TRIALS (default 5).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";

const SOURCES = Number(process.env.BENCH_SOURCES ?? 10000);
const TRIALS = Number(process.env.BENCH_TRIALS ?? 5);
const dir = mkdtempSync(join(tmpdir(), "bench-dmarc-"));
const out = join(dir, "bench.mjs");
const root = resolve(import.meta.dirname, "..");
await build({
  stdin: {
    contents: `export { parseDmarcXml, unpackAttachment } from "./src/reputation/dmarc-report";
               export { dmarcXml, gzip, zip, zeros } from "./test/support/report-builders";`,
    resolveDir: root,
    loader: "ts",
  },
  bundle: true,
  platform: "node",
  format: "esm",
  outfile: out,
  logLevel: "warning",
});
const { parseDmarcXml, unpackAttachment, dmarcXml, gzip, zip, zeros } = await import(pathToFileURL(out).href);
rmSync(dir, { recursive: true, force: true });

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const records = Array.from({ length: SOURCES }, (_, i) => ({ ip: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, count: (i % 50) + 1, headerFrom: "example.com" }));
const xml = dmarcXml("google", "example.com", "bench", records);
const gz = await gzip(xml);
const inflate = [];
const parse = [];
let kept = 0;
for (let t = 0; t < TRIALS; t++) {
  let s = performance.now();
  const doc = await unpackAttachment(gz);
  inflate.push(performance.now() - s);
  s = performance.now();
  kept = parseDmarcXml(new TextDecoder().decode(doc)).records.length;
  parse.push(performance.now() - s);
}
console.log(`${SOURCES}-source report: ${xml.length} bytes XML, ${gz.length} bytes gzip; median of ${TRIALS}: gunzip ${median(inflate).toFixed(1)} ms, parse ${median(parse).toFixed(1)} ms; ${kept} sources kept`);

const bomb = await zip([{ name: "report.xml", data: zeros(1024 * 1024 * 1024) }]);
const s = performance.now();
try {
  await unpackAttachment(bomb);
  console.log("zip bomb: NOT refused");
  process.exitCode = 1;
} catch (e) {
  console.log(`1 GiB zip bomb (${bomb.length} bytes): refused in ${(performance.now() - s).toFixed(1)} ms: ${e.message}`);
}
const liar = await zip([{ name: "report.xml", data: zeros(256 * 1024 * 1024), declaredSize: 100 }]);
const s2 = performance.now();
try {
  await unpackAttachment(liar);
  console.log("lying zip bomb: NOT refused");
  process.exitCode = 1;
} catch (e) {
  console.log(`256 MiB zip bomb declaring 100 bytes (${liar.length} bytes): refused in ${(performance.now() - s2).toFixed(1)} ms: ${e.message}`);
}
