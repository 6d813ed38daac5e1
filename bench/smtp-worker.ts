/**
 * Benchmark worker for `npm run bench:smtp`: runs the Edge Relay SMTP client inside the Workers runtime
 * (workerd, via wrangler's unstable_startWorker) over `cloudflare:sockets` against a local sink.
 * POST /run {port, messages, connections, raw} -> {ms, sent, failed}.
 */
import { openSmtpSession, type SmtpSession } from "../src/smtp/client";
import { cloudflareSocketFactory } from "../src/smtp/cloudflare-socket";

interface RunRequest {
  port: number;
  messages: number;
  connections: number;
  raw: string;
}

export default {
  async fetch(request: Request): Promise<Response> {
    const job = (await request.json()) as RunRequest;
    const body = new TextEncoder().encode(job.raw);
    let next = 0;
    let sent = 0;
    let failed = 0;
    const started = performance.now();
    const worker = async () => {
      const session: SmtpSession = await openSmtpSession({
        socketFactory: cloudflareSocketFactory,
        host: "127.0.0.1",
        port: job.port,
        tls: "off",
        heloName: "bench.edge-relay.example",
      });
      try {
        while (next < job.messages) {
          const i = next++;
          const r = await session.sendMail({ mailFrom: "bench@sender.example", rcptTo: [`rcpt${i}@dest.example`] }, body);
          if (r.error) failed++;
          else sent++;
        }
      } finally {
        await session.quit();
      }
    };
    await Promise.all(Array.from({ length: job.connections }, worker));
    return Response.json({ ms: performance.now() - started, sent, failed });
  },
} satisfies ExportedHandler;
