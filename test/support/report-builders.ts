/**
 * Builders for reputation-report tests: DMARC aggregate reports shaped like the ones Google, Microsoft and Yahoo
 * send, SMTP TLS reports, gzip and zip containers (a small zip writer: stored/deflate entries with CRC-32), zip
 * bombs, and the report mail around them. Uses CompressionStream only, so it runs in Node and in workerd.
 */

export interface RecordSpec {
  ip: string;
  count: number;
  disposition?: string;
  dkim?: "pass" | "fail";
  spf?: "pass" | "fail";
  headerFrom: string;
  dkimDomain?: string;
  selector?: string;
  spfDomain?: string;
}

function recordXml(r: RecordSpec, style: "google" | "microsoft" | "yahoo", p = ""): string {
  const dkim = r.dkim ?? "pass";
  const spf = r.spf ?? "pass";
  const envelope = style === "microsoft" ? `<${p}envelope_to>${r.headerFrom}</${p}envelope_to><${p}envelope_from>${r.spfDomain ?? r.headerFrom}</${p}envelope_from>` : "";
  return `<${p}record>
    <${p}row><${p}source_ip>${r.ip}</${p}source_ip><${p}count>${r.count}</${p}count>
      <${p}policy_evaluated><${p}disposition>${r.disposition ?? "none"}</${p}disposition><${p}dkim>${dkim}</${p}dkim><${p}spf>${spf}</${p}spf></${p}policy_evaluated></${p}row>
    <${p}identifiers>${envelope}<${p}header_from>${r.headerFrom}</${p}header_from></${p}identifiers>
    <${p}auth_results>
      <${p}dkim><${p}domain>${r.dkimDomain ?? r.headerFrom}</${p}domain>${r.selector ? `<${p}selector>${r.selector}</${p}selector>` : ""}<${p}result>${dkim}</${p}result></${p}dkim>
      <${p}spf><${p}domain>${r.spfDomain ?? r.headerFrom}</${p}domain><${p}scope>mfrom</${p}scope><${p}result>${spf}</${p}result></${p}spf>
    </${p}auth_results>
  </${p}record>`;
}

/** A DMARC aggregate report in the given reporter's style (element order, extras and namespaces as they send them). */
export function dmarcXml(style: "google" | "microsoft" | "yahoo" | "dmarcbis", domain: string, reportId: string, records: RecordSpec[], begin = Math.floor(Date.now() / 1000 / 86400) * 86400 - 86400): string {
  if (style === "google") {
    return `<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata><org_name>google.com</org_name><email>noreply-dmarc-support@google.com</email><extra_contact_info>https://support.google.com/a/answer/2466580</extra_contact_info><report_id>${reportId}</report_id><date_range><begin>${begin}</begin><end>${begin + 86399}</end></date_range></report_metadata>
  <policy_published><domain>${domain}</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp><pct>100</pct><np>none</np></policy_published>
  ${records.map((r) => recordXml(r, "google")).join("\n")}
</feedback>`;
  }
  if (style === "microsoft") {
    return `<?xml version="1.0"?>
<feedback xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <version>1.0</version>
  <report_metadata><org_name>Enterprise Outlook</org_name><email>dmarcreport@microsoft.com</email><report_id>${reportId}</report_id><date_range><begin>${begin}</begin><end>${begin + 86400}</end></date_range></report_metadata>
  <policy_published><domain>${domain}</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp><pct>100</pct><fo>0</fo></policy_published>
  ${records.map((r) => recordXml(r, "microsoft")).join("\n")}
</feedback>`;
  }
  if (style === "yahoo") {
    return `<?xml version="1.0"?>
<feedback>
  <report_metadata><org_name>Yahoo</org_name><email>dmarchelp@yahooinc.com</email><report_id>${reportId}</report_id><date_range><begin>${begin}</begin><end>${begin + 86399}</end></date_range></report_metadata>
  <policy_published><domain>${domain}</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><pct>100</pct></policy_published>
  ${records.map((r) => recordXml(r, "yahoo")).join("\n")}
</feedback>`;
  }
  // DMARCbis draft: a prefixed namespace on every element.
  return `<?xml version="1.0" encoding="UTF-8"?>
<d:feedback xmlns:d="urn:ietf:params:xml:ns:dmarc-2.0">
  <d:version>1.0</d:version>
  <d:report_metadata><d:org_name>bis.example</d:org_name><d:email>r@bis.example</d:email><d:report_id>${reportId}</d:report_id><d:date_range><d:begin>${begin}</d:begin><d:end>${begin + 86399}</d:end></d:date_range></d:report_metadata>
  <d:policy_published><d:domain>${domain}</d:domain><d:p>reject</d:p></d:policy_published>
  ${records.map((r) => recordXml(r, "google", "d:")).join("\n")}
</d:feedback>`;
}

/** An RFC 8460 TLS report. */
export function tlsReportJson(domain: string, reportId: string, success: number, failures: { type: string; count: number; mx?: string }[]): string {
  return JSON.stringify({
    "organization-name": "Google Inc.",
    "date-range": { "start-datetime": new Date(Date.now() - 86400_000).toISOString(), "end-datetime": new Date().toISOString() },
    "contact-info": "smtp-tls-reporting@google.com",
    "report-id": reportId,
    policies: [
      {
        policy: { "policy-type": "sts", "policy-string": ["version: STSv1", "mode: enforce", `mx: mx.${domain}`, "max_age: 86400"], "policy-domain": domain, "mx-host": [`mx.${domain}`] },
        summary: { "total-successful-session-count": success, "total-failure-session-count": failures.reduce((s, f) => s + f.count, 0) },
        "failure-details": failures.map((f) => ({ "result-type": f.type, "sending-mta-ip": "209.85.220.41", "receiving-mx-hostname": f.mx ?? `mx.${domain}`, "receiving-ip": "192.0.2.25", "failed-session-count": f.count })),
      },
    ],
  });
}

async function pipe(data: Uint8Array, format: "gzip" | "deflate-raw"): Promise<Uint8Array> {
  const out = new Uint8Array(await new Response(new Blob([data]).stream().pipeThrough(new CompressionStream(format))).arrayBuffer());
  return out;
}

export function gzip(data: Uint8Array | string): Promise<Uint8Array> {
  return pipe(typeof data === "string" ? new TextEncoder().encode(data) : data, "gzip");
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A zip archive of the given files (deflate unless `stored`); `declaredSize` lies about the size (bomb tests). */
export async function zip(files: { name: string; data: Uint8Array | string; stored?: boolean; declaredSize?: number }[]): Promise<Uint8Array> {
  const locals: Uint8Array[] = [];
  const centrals: Uint8Array[] = [];
  let offset = 0;
  for (const f of files) {
    const data = typeof f.data === "string" ? new TextEncoder().encode(f.data) : f.data;
    const body = f.stored ? data : await pipe(data, "deflate-raw");
    const name = new TextEncoder().encode(f.name);
    const crc = crc32(data);
    const size = f.declaredSize ?? data.byteLength;
    const local = new Uint8Array(30 + name.byteLength);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(8, f.stored ? 0 : 8, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, body.byteLength, true);
    lv.setUint32(22, size, true);
    lv.setUint16(26, name.byteLength, true);
    local.set(name, 30);
    const central = new Uint8Array(46 + name.byteLength);
    const cv = new DataView(central.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 20, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(10, f.stored ? 0 : 8, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, body.byteLength, true);
    cv.setUint32(24, size, true);
    cv.setUint16(28, name.byteLength, true);
    cv.setUint32(42, offset, true);
    central.set(name, 46);
    locals.push(local, body);
    centrals.push(central);
    offset += local.byteLength + body.byteLength;
  }
  const cdSize = centrals.reduce((s, c) => s + c.byteLength, 0);
  const eocd = new Uint8Array(22);
  const ev = new DataView(eocd.buffer);
  ev.setUint32(0, 0x06054b50, true);
  ev.setUint16(8, files.length, true);
  ev.setUint16(10, files.length, true);
  ev.setUint32(12, cdSize, true);
  ev.setUint32(16, offset, true);
  return concat([...locals, ...centrals, eocd]);
}

export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.byteLength, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** `n` bytes of zeros compressed: a decompression bomb (1 GiB of zeros deflates to ~1 MB; 64 MiB to ~64 KB). */
export function zeros(n: number): Uint8Array {
  return new Uint8Array(n);
}

function base64(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i += 0x8000) s += String.fromCharCode(...b.subarray(i, i + 0x8000));
  return btoa(s).replace(/.{76}/g, "$&\r\n");
}

/** A report mail as reporters send it: a short text part and the report as an attachment. */
export function reportMail(o: { from: string; to: string; subject: string; attachment?: { name: string; type: string; data: Uint8Array }; plainBody?: string; plainType?: string; authResults?: string }): Uint8Array {
  const head = [
    ...(o.authResults ? [`Authentication-Results: mx.cloudflare.net; ${o.authResults}`] : []),
    `From: ${o.from}`,
    `To: ${o.to}`,
    `Subject: ${o.subject}`,
    `Message-ID: <${Math.random().toString(36).slice(2)}@reporter.example>`,
    "MIME-Version: 1.0",
  ];
  if (o.plainBody !== undefined) return new TextEncoder().encode([...head, `Content-Type: ${o.plainType ?? "text/xml"}; charset=utf-8`, "", o.plainBody, ""].join("\r\n"));
  const a = o.attachment!;
  return new TextEncoder().encode(
    [
      ...head,
      'Content-Type: multipart/mixed; boundary="b0undary"',
      "",
      "--b0undary",
      "Content-Type: text/plain; charset=utf-8",
      "",
      "This is an aggregate report.",
      "--b0undary",
      `Content-Type: ${a.type}; name="${a.name}"`,
      "Content-Transfer-Encoding: base64",
      `Content-Disposition: attachment; filename="${a.name}"`,
      "",
      base64(a.data),
      "--b0undary--",
      "",
    ].join("\r\n"),
  );
}
