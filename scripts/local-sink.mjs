// A local catch-all SMTP server for `npm start`: accepts every message and saves it as .eml.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SMTPServer } from "smtp-server";

/** Starts the sink on 127.0.0.1:port; each message is written to dir and announced on stdout. */
export function startLocalSink(port, dir) {
  mkdirSync(dir, { recursive: true });
  let n = 0;
  const server = new SMTPServer({
    name: "sink.localhost",
    authOptional: true,
    disabledCommands: ["STARTTLS", "AUTH"],
    logger: false,
    onData(stream, session, callback) {
      const chunks = [];
      stream.on("data", (c) => chunks.push(c));
      stream.on("end", () => {
        n++;
        const file = join(dir, `${new Date().toISOString().replace(/[:.]/g, "-")}-${n}.eml`);
        const raw = Buffer.concat(chunks);
        writeFileSync(file, raw);
        const subject = /^Subject: (.*)$/im.exec(raw.toString("utf8"))?.[1] ?? "";
        const to = session.envelope.rcptTo.map((r) => r.address).join(", ");
        console.log(`[sink] message from ${session.envelope.mailFrom?.address} to ${to}: "${subject}" -> ${file}`);
        callback(null, "2.0.0 saved");
      });
    },
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => resolve(server));
  });
}
