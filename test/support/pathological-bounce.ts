/**
 * A pathological bounce report for the parser's bounds test and `npm run bench:bounce`: 25 MiB with thousands of
 * header fields, a 1 MiB header line, multipart nesting far deeper than any MTA writes, thousands of failed
 * recipients (text lines and DSN groups), lines made of address characters without an `@` or with endless
 * domain labels (what made the old address pattern quadratic), unclosed HTML tags, and a large returned original.
 */

const MIB = 1024 * 1024;

/**
 * Builds the report; `totalBytes` (default 25 MiB) is reached by padding the returned original. `bodyFirst` leaves
 * out the 1 MiB header line and most junk headers and nests only 8 deep, so that the body's traps (text lines, DSN
 * groups, HTML) fall inside the parser's 2 MiB window and are parsed.
 */
export function pathologicalBounce(totalBytes = 25 * MIB, bodyFirst = false): string {
  const out: string[] = [];
  out.push("Return-Path: <>", "From: Mail Delivery System <MAILER-DAEMON@mx.example>", "To: bounce@bounces.sender.example", "Subject: Undelivered Mail Returned to Sender");
  for (let i = 0; i < (bodyFirst ? 200 : 5000); i++) out.push(`X-Junk-${i}: ${"v".repeat(40)} <junk${i}@example.com>`);
  if (!bodyFirst) out.push(`X-Long: ${"a".repeat(MIB)}`);
  if (!bodyFirst) out.push(`X-Failed-Recipients: ${Array.from({ length: 3000 }, (_, i) => `x${i}@example.com`).join(", ")}`);
  out.push("MIME-Version: 1.0");
  const depth = bodyFirst ? 8 : 400;
  out.push(`Content-Type: multipart/mixed; boundary="b0"`, "");
  for (let d = 0; d < depth; d++) out.push(`--b${d}`, `Content-Type: multipart/mixed; boundary="b${d + 1}"`, "");
  out.push(`--b${depth}`, `Content-Type: multipart/report; report-type=delivery-status; boundary="r"`, "", "--r", "Content-Type: text/plain", "");
  out.push("I'm sorry to have to inform you that your message could not be delivered to one or more recipients.", "");
  for (let i = 0; i < 5000; i++) out.push(`<user${i}@example.com>: host mx.example said: 550 5.1.1 <user${i}@example.com>... User unknown (in reply to RCPT TO command)`);
  const trap = bodyFirst ? 64 * 1024 : MIB;
  out.push("a".repeat(trap));
  out.push("x".repeat(trap / 4) + "@");
  out.push("a@" + "b.".repeat(trap / 4));
  out.push("<" + "a@".repeat(trap / 4));
  out.push("relaying mail to ".repeat(trap / 64));
  out.push("550 ".repeat(trap / 8));
  out.push("5.1.1 ".repeat(trap / 8));
  out.push("--r", "Content-Type: text/html", "", "<script".repeat(trap / 16) + "<p>" + "<br".repeat(trap / 8) + "<a<a".repeat(trap / 8));
  out.push("--r", "Content-Type: message/delivery-status", "", "Reporting-MTA: dns; mx.example", "");
  for (let i = 0; i < 5000; i++) out.push(`Final-Recipient: rfc822; dsn${i}@example.com`, "Action: failed", "Status: 5.1.1", `Diagnostic-Code: smtp; 550 5.1.1 <dsn${i}@example.com>: ${"no such user ".repeat(20)}`, "");
  out.push("--r", "Content-Type: message/rfc822", "", "Message-ID: <orig@sender.example>", "Subject: hi", "");
  let text = out.join("\n") + "\n";
  const pad = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3\n";
  const missing = totalBytes - text.length - 16;
  if (missing > 0) text += pad.repeat(Math.ceil(missing / pad.length));
  return text + "--r--\n";
}
