/** Temporary minimal composer for the walking skeleton (ASCII text/html); replaced by src/mime/compose.ts. */
export function composeSimple(input: { from: string; to: string[]; subject: string; text?: string; html?: string }, domain: string) {
  const messageId = `${crypto.randomUUID()}@${domain}`;
  const headers = [
    `From: ${input.from}`,
    `To: ${input.to.join(", ")}`,
    `Subject: ${input.subject}`,
    `Date: ${new Date().toUTCString().replace("GMT", "+0000")}`,
    `Message-ID: <${messageId}>`,
    "MIME-Version: 1.0",
  ];
  let body: string;
  if (input.html && input.text) {
    const b = `b_${crypto.randomUUID()}`;
    headers.push(`Content-Type: multipart/alternative; boundary="${b}"`);
    body = `--${b}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${input.text}\r\n--${b}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n${input.html}\r\n--${b}--\r\n`;
  } else {
    headers.push(`Content-Type: text/${input.html ? "html" : "plain"}; charset=utf-8`);
    body = (input.html ?? input.text ?? "") + "\r\n";
  }
  return { raw: headers.join("\r\n") + "\r\n\r\n" + body.replace(/\r?\n/g, "\r\n"), messageId };
}
