/** The login form: the admin token opens a session. */
import { html } from "hono/html";
import type { Html } from "../layout";

export function loginBody(nonce: string, next: string, error: string | null): Html {
  return html`<div class="login"><h1>Sign in</h1>
    <p class="muted">Enter the relay's admin token (the <span class="mono">ADMIN_TOKEN</span> secret).</p>
    ${error ? html`<div class="notice error" role="alert">${error}</div>` : ""}
    <form method="post" action="/dashboard/login">
      <input type="hidden" name="nonce" value="${nonce}">
      <input type="hidden" name="next" value="${next}">
      <label>Admin token<input type="password" name="token" autocomplete="current-password" required autofocus></label>
      <button type="submit">Sign in</button>
    </form></div>`;
}
