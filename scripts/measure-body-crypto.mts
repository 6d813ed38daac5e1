/** Measures sealing and opening message bodies (issue 21): npx esbuild scripts/measure-body-crypto.mts --bundle --platform=node --format=esm --log-level=warning --outfile=/tmp/measure-body-crypto.mjs && node /tmp/measure-body-crypto.mjs */
import { sealInlineBody, openInlineBody, putStoredBody, readStoredText } from "../src/store/body-crypto.ts";
const key = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString("base64");
const objects = new Map<string, { data: Uint8Array; meta: Record<string, string> }>();
const env = { BODY_ENCRYPTION_KEYS: `k1:${key}`, BODIES: {
  put: async (k: string, d: Uint8Array, o: { customMetadata?: Record<string, string> }) => void objects.set(k, { data: d, meta: o.customMetadata ?? {} }),
  get: async (k: string) => { const o = objects.get(k)!; return { customMetadata: o.meta, body: new Blob([o.data]).stream() }; },
} } as never;
for (const size of [50_000, 1 << 20, 25 << 20]) {
  const text = "x".repeat(size);
  const bytes = new TextEncoder().encode(text);
  const runs = size > 1e6 ? 5 : 50;
  let t = performance.now();
  for (let i = 0; i < runs; i++) await putStoredBody(env, "bodies/a", bytes);
  const seal = (performance.now() - t) / runs;
  t = performance.now();
  for (let i = 0; i < runs; i++) await readStoredText(env, "bodies/a");
  const open = (performance.now() - t) / runs;
  let inline = "";
  if (size <= 75_000) {
    t = performance.now();
    let s = "";
    for (let i = 0; i < runs; i++) s = await sealInlineBody(env, text, "m");
    const si = (performance.now() - t) / runs;
    t = performance.now();
    for (let i = 0; i < runs; i++) await openInlineBody(env, s, "m");
    inline = ` inline seal ${si.toFixed(2)} ms open ${((performance.now() - t) / runs).toFixed(2)} ms, sealed ${s.length} chars`;
  }
  console.log(`${size} bytes: R2 seal ${seal.toFixed(2)} ms open ${open.toFixed(2)} ms (+${objects.get("bodies/a")!.data.byteLength - size} bytes; open includes decoding to text)${inline}`);
}
