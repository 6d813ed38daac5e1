/** Temporary minimal SMTP sender for the walking skeleton; replaced by src/smtp/. */
import { connect } from "cloudflare:sockets";

export interface SimpleResult {
  ok: boolean;
  temporary: boolean;
  code: number;
  text: string;
  perRecipient: { address: string; code: number; text: string }[];
}

export async function sendSimple(
  host: string,
  port: number,
  helo: string,
  mailFrom: string,
  rcpts: string[],
  raw: string,
): Promise<SimpleResult> {
  const socket = connect({ hostname: host, port }, { secureTransport: "off", allowHalfOpen: false });
  const writer = socket.writable.getWriter();
  const reader = socket.readable.getReader();
  const dec = new TextDecoder();
  let buf = "";
  const readReply = async (): Promise<{ code: number; text: string }> => {
    const lines: string[] = [];
    for (;;) {
      const nl = buf.indexOf("\r\n");
      if (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        lines.push(line);
        if (line[3] !== "-") return { code: Number(line.slice(0, 3)), text: lines.map((l) => l.slice(4)).join("\n") };
        continue;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error("connection closed");
      buf += dec.decode(value, { stream: true });
    }
  };
  const cmd = async (line: string) => {
    await writer.write(new TextEncoder().encode(line + "\r\n"));
    return readReply();
  };
  const fail = (r: { code: number; text: string }): SimpleResult => ({ ok: false, temporary: r.code < 500, code: r.code, text: r.text, perRecipient: [] });
  try {
    let r = await readReply();
    if (r.code !== 220) return fail(r);
    r = await cmd(`EHLO ${helo}`);
    if (r.code !== 250) return fail(r);
    r = await cmd(`MAIL FROM:<${mailFrom}>`);
    if (r.code !== 250) return fail(r);
    const perRecipient = [];
    for (const a of rcpts) {
      const rr = await cmd(`RCPT TO:<${a}>`);
      perRecipient.push({ address: a, ...rr });
    }
    if (!perRecipient.some((p) => p.code === 250 || p.code === 251)) {
      await cmd("RSET");
      return { ok: false, temporary: perRecipient.some((p) => p.code < 500), code: perRecipient[0]!.code, text: perRecipient[0]!.text, perRecipient };
    }
    r = await cmd("DATA");
    if (r.code !== 354) return { ...fail(r), perRecipient };
    const stuffed = raw.replace(/\r?\n/g, "\r\n").replace(/^\./gm, "..");
    r = await cmd(stuffed + (stuffed.endsWith("\r\n") ? "" : "\r\n") + ".");
    await cmd("QUIT").catch(() => undefined);
    return { ok: r.code === 250, temporary: r.code < 500, code: r.code, text: r.text, perRecipient };
  } catch (e) {
    return { ok: false, temporary: true, code: 0, text: String(e), perRecipient: [] };
  } finally {
    await socket.close().catch(() => undefined);
  }
}
