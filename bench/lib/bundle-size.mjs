/**
 * The Worker's bundle size: bundled by esbuild as the benchmark runs it (ESM, workerd conditions, not minified,
 * the bundle relay.mjs runs) and gzipped at level 9. Wrangler's upload adds its own shims and comes out
 * about 11 KiB gzipped larger (December 2026: 271.5 vs 260.3 KiB); `npx wrangler deploy --dry-run --outdir DIR`
 * prints the exact upload size.
 */
import { join } from "node:path";
import { gzipSync } from "node:zlib";

/** The Worker bundled from `root` the way the benchmark runs it, as bytes (relay.mjs hands its text to Miniflare). */
export async function bundleWorker(root) {
  const { build } = await import("esbuild");
  const out = await build({
    entryPoints: [join(root, "src/index.ts")],
    bundle: true,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    conditions: ["workerd", "worker", "browser"],
    mainFields: ["module", "main"],
    external: ["cloudflare:*", "node:*"],
    write: false,
    logLevel: "warning",
  });
  return out.outputFiles[0].contents;
}

/** `{ bytes, gzip_bytes }` of the Worker bundle built from `root`. */
export async function workerBundleSize(root) {
  const bytes = await bundleWorker(root);
  return { bytes: bytes.byteLength, gzip_bytes: gzipSync(bytes, { level: 9 }).byteLength };
}
