/** Helpers for the reporting page tests: log in through the real form and fetch pages with the session. */
import { expect } from "vitest";
import { ADMIN_TOKEN, call } from "./helpers";

export function cookiesOf(res: Response): Map<string, string> {
  const m = new Map<string, string>();
  for (const c of res.headers.getSetCookie()) {
    const [pair] = c.split(";");
    const i = pair!.indexOf("=");
    m.set(pair!.slice(0, i), pair!.slice(i + 1));
  }
  return m;
}

/** The value of a hidden input in a page. */
export function hiddenField(page: string, name: string): string {
  const m = new RegExp(`name="${name}" value="([^"]*)"`).exec(page);
  if (!m) throw new Error(`no hidden field ${name}`);
  return m[1]!;
}

export interface DashboardSession {
  cookie: string;
  csrf: string;
  get(path: string): Promise<Response>;
  post(path: string, fields: Record<string, string>, headers?: Record<string, string>): Promise<Response>;
}

/** Signs in with the admin token through GET+POST /dashboard/login, as a browser would. */
export async function login(token = ADMIN_TOKEN): Promise<DashboardSession> {
  const form = await call("/dashboard/login");
  expect(form.status).toBe(200);
  const nonceCookie = cookiesOf(form).get("__Host-er_login")!;
  const nonce = hiddenField(await form.text(), "nonce");
  const res = await call("/dashboard/login", {
    method: "POST",
    headers: { cookie: `__Host-er_login=${nonceCookie}`, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ nonce, token, next: "/dashboard" }).toString(),
    redirect: "manual",
  });
  expect(res.status).toBe(303);
  const session = cookiesOf(res).get("__Host-er_session");
  if (!session) throw new Error("no session cookie");
  const cookie = `__Host-er_session=${session}`;
  const overview = await call("/dashboard/webhooks", { headers: { cookie } });
  const csrf = hiddenField(await overview.text(), "csrf");
  return {
    cookie,
    csrf,
    get: (path) => call(path, { headers: { cookie }, redirect: "manual" }),
    post: (path, fields, headers = {}) =>
      call(path, {
        method: "POST",
        redirect: "manual",
        headers: { cookie, "content-type": "application/x-www-form-urlencoded", ...headers },
        body: new URLSearchParams(fields).toString(),
      }),
  };
}

/** The number shown on a card of the overview (`data-metric="delivered"`). */
export function metric(page: string, name: string): number {
  const m = new RegExp(`data-metric="${name}"><div class="label">[^<]*</div><div class="value">([\\d,]+)</div>`).exec(page);
  if (!m) throw new Error(`no metric ${name}`);
  return Number(m[1]!.replace(/,/g, ""));
}
