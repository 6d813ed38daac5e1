// DKIM signing throughput: Edge Relay's signDkim (Web Crypto) against mailauth's dkimSign (node:crypto), in Node,
// for RSA-2048 and Ed25519 on a 2 KB and a 200 KB message. Run: npm run bench:dkim
// Plain .mjs so Node runs it directly; it imports the TypeScript module through Node 22's type stripping.
// Env: BENCH_TRIAL_MS (default 400) and BENCH_TRIALS (default 7) per measurement; the median trial is reported.
import { generateKeyPairSync } from "node:crypto";
import { dkimSign } from "mailauth/lib/dkim/sign.js";
import { dkimVerify } from "mailauth/lib/dkim/verify.js";
import { publicKeyRecord, signDkim } from "../src/mime/dkim.ts";

const TRIAL_MS = Number(process.env.BENCH_TRIAL_MS ?? 400);
const TRIALS = Number(process.env.BENCH_TRIALS ?? 7);

const keys = {
  "rsa-sha256 (RSA-2048)": generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  "ed25519-sha256": generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
};

function message(targetBytes) {
  const head = [
    "From: Alice Example <alice@example.com>",
    "To: bob@example.org",
    "Subject: Your monthly statement",
    "Date: Sat, 28 Nov 2026 05:49:30 +0000",
    "Message-ID: <bench.1@example.com>",
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="b1"',
    "List-Unsubscribe: <https://relay.example.com/u/abc>, <mailto:unsub@bounces.example.com>",
    "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
    "",
    "--b1",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 8bit",
    "",
    "Hello Bob,  here is your statement — Grüße.   ",
    "",
  ].join("\r\n");
  const lines = [];
  let size = head.length;
  let i = 0;
  while (size < targetBytes - 40) {
    const line = Buffer.from(`line ${i++} of the attachment `.repeat(4)).toString("base64").slice(0, 76);
    lines.push(line);
    size += line.length + 2;
  }
  return `${head}--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n${lines.join("\r\n")}\r\n--b1--\r\n`;
}

const messages = { "2 KB": message(2 * 1024), "200 KB": message(200 * 1024) };

/** Runs one trial of `fn` for TRIAL_MS and returns calls per second. */
async function trial(fn) {
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < TRIAL_MS) {
    await fn();
    n++;
    elapsed = performance.now() - start;
  }
  return (n * 1000) / elapsed;
}

/** Median rates of two signers; their trials alternate so both see the same machine load. */
async function rates(a, b) {
  for (let i = 0; i < 20; i++) await Promise.all([a(), b()]); // warm up (key import, JIT)
  const ra = [];
  const rb = [];
  for (let t = 0; t < TRIALS; t++) {
    ra.push(await trial(a));
    rb.push(await trial(b));
  }
  const median = (xs) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  return [median(ra), median(rb)];
}

console.log(`DKIM signing benchmark — Node ${process.version}, Edge Relay on Web Crypto (crypto.subtle), mailauth on node:crypto`);
console.log(`(measured in Node, not in workerd; median of ${TRIALS} trials of ${TRIAL_MS} ms, one signature per call, sequential, trials alternating)\n`);

const rows = [];
for (const [algName, pem] of Object.entries(keys)) {
  const algorithm = algName.split(" ")[0];
  const signer = { domain: "example.com", selector: "bench", privateKeyPem: pem };
  const mailauthKey = { signingDomain: "example.com", selector: "bench", privateKey: pem, algorithm };
  const txt = await publicKeyRecord(pem);
  for (const [sizeName, raw] of Object.entries(messages)) {
    // Check the bench signs correctly before timing it.
    const signed = await signDkim(raw, [signer]);
    const check = await dkimVerify(signed, { resolver: async () => [[txt]] });
    if (check.results[0]?.status.result !== "pass") throw new Error(`bench self-check failed for ${algName} ${sizeName}`);

    const [ours, theirs] = await rates(
      () => signDkim(raw, [signer]),
      () => dkimSign(raw, { canonicalization: "relaxed/relaxed", signatureData: [mailauthKey] }),
    );
    rows.push({ algName, sizeName, bytes: Buffer.byteLength(raw), ours, theirs });
    console.log(
      `${algName.padEnd(22)} ${sizeName.padStart(6)} (${String(Buffer.byteLength(raw)).padStart(6)} B)  ` +
        `edge-relay ${ours.toFixed(0).padStart(6)}/s   mailauth ${theirs.toFixed(0).padStart(6)}/s   ratio ${(ours / theirs).toFixed(2)}x`,
    );
  }
}
console.log("\nratio = edge-relay signatures per second / mailauth signatures per second (higher is faster)");
