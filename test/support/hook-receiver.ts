/**
 * A webhook receiver for tests, served by the peers' control server:
 * - POST /hooks/:name/config  body: { secret?, failTimes? }  -> verify signatures with `secret`; answer 500 to the next `failTimes` posts
 * - POST /hooks/:name         a delivery: stored with its headers, whether its signature verified, and the status answered
 * - GET  /hooks/:name         -> HookRequest[] received so far
 * It verifies `Edge-Relay-Signature: t=..,v1=..` independently of the Worker's code (node:crypto).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";

export interface HookRequest {
  headers: Record<string, string>;
  body: string;
  receivedAt: number;
  /** Status the receiver answered. */
  status: number;
  /** null when no secret was configured. */
  verified: boolean | null;
}

interface Hook {
  secret?: string;
  failTimes: number;
  requests: HookRequest[];
}

const hooks = new Map<string, Hook>();

function hookOf(name: string): Hook {
  let h = hooks.get(name);
  if (!h) hooks.set(name, (h = { failTimes: 0, requests: [] }));
  return h;
}

/** Checks a signature header the way the README tells receivers to (5 minutes tolerance). */
export function verifySignature(secret: string, body: string, header: string | undefined, nowS = Math.floor(Date.now() / 1000)): boolean {
  const m = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header ?? "");
  if (!m || Math.abs(nowS - Number(m[1])) > 300) return false;
  const expected = createHmac("sha256", secret).update(`${m[1]}.${body}`).digest();
  return timingSafeEqual(expected, Buffer.from(m[2]!, "hex"));
}

/** Handles /hooks/... requests; returns false for other paths. */
export async function handleHookRequest(req: IncomingMessage, res: ServerResponse, parts: string[], body: () => Promise<string>): Promise<boolean> {
  if (parts[0] !== "hooks" || !parts[1]) return false;
  const hook = hookOf(parts[1]);
  const json = (status: number, v: unknown) => {
    res.writeHead(status, { "content-type": "application/json" });
    res.end(JSON.stringify(v));
  };
  if (req.method === "POST" && parts[2] === "config") {
    const cfg = JSON.parse((await body()) || "{}") as { secret?: string; failTimes?: number };
    hook.secret = cfg.secret;
    hook.failTimes = cfg.failTimes ?? 0;
    json(200, { ok: true });
    return true;
  }
  if (req.method === "POST" && parts.length === 2) {
    const text = await body();
    const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : (v ?? "")]));
    const status = hook.failTimes > 0 ? 500 : 200;
    if (hook.failTimes > 0) hook.failTimes--;
    hook.requests.push({
      headers,
      body: text,
      receivedAt: Date.now(),
      status,
      verified: hook.secret ? verifySignature(hook.secret, text, headers["edge-relay-signature"]) : null,
    });
    json(status, status === 200 ? { ok: true } : { error: "scripted failure" });
    return true;
  }
  if (req.method === "GET" && parts.length === 2) {
    json(200, hook.requests);
    return true;
  }
  return false;
}
