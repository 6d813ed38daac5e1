/**
 * A bare SMTP client for tests that must see exact replies (codes, enhanced codes, the reply to each
 * command) or misbehave (send more than the size limit, hang up mid-DATA).
 */
import { connect, type Socket } from "node:net";

export interface Reply {
  code: number;
  /** All lines joined with "\n", without the codes. */
  text: string;
}

export class SmtpDialog {
  private buffer = "";
  private waiters: ((r: Reply) => void)[] = [];
  private replies: Reply[] = [];
  private lines: string[] = [];

  private constructor(readonly socket: Socket) {
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      this.buffer += chunk;
      let i: number;
      while ((i = this.buffer.indexOf("\r\n")) >= 0) {
        const line = this.buffer.slice(0, i);
        this.buffer = this.buffer.slice(i + 2);
        this.lines.push(line.slice(4));
        if (line[3] !== "-") {
          const reply = { code: Number(line.slice(0, 3)), text: this.lines.join("\n") };
          this.lines = [];
          const w = this.waiters.shift();
          if (w) w(reply);
          else this.replies.push(reply);
        }
      }
    });
  }

  static async open(port: number): Promise<{ dialog: SmtpDialog; greeting: Reply }> {
    const socket = connect(port, "127.0.0.1");
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", () => resolve());
      socket.once("error", reject);
    });
    const dialog = new SmtpDialog(socket);
    return { dialog, greeting: await dialog.next() };
  }

  /** The next reply from the server. */
  next(timeoutMs = 60_000): Promise<Reply> {
    const ready = this.replies.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no SMTP reply in time")), timeoutMs);
      const onClose = () => reject(new Error("connection closed before a reply"));
      this.socket.once("close", onClose);
      this.waiters.push((r) => {
        clearTimeout(timer);
        this.socket.off("close", onClose);
        resolve(r);
      });
    });
  }

  /** Sends one command line and returns its reply. */
  async command(line: string): Promise<Reply> {
    this.socket.write(`${line}\r\n`);
    return this.next();
  }

  /** Sends raw bytes without waiting. */
  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  close(): void {
    this.socket.destroy();
  }
}

/** AUTH PLAIN initial response for a user name and password. */
export function authPlain(user: string, pass: string): string {
  return Buffer.from(`\0${user}\0${pass}`).toString("base64");
}

/** A small RFC 5322 message, CRLF line endings, dot-stuffing not applied. */
export function message(from: string, to: string, subject: string, body = "Hello from the bridge test."): string {
  return [`From: ${from}`, `To: ${to}`, `Subject: ${subject}`, `Message-ID: <${subject.replace(/\W/g, "")}@bridge.test>`, "", body, ""].join("\r\n");
}
