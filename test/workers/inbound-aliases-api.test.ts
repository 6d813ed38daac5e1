/** The admin API for forwarding aliases: happy path, refusals, and who may call it. */
import { describe, expect, it } from "vitest";
import { ADMIN_TOKEN, call, createTenantWithKey, env, unique } from "./helpers";

type AliasView = { address: string; tenant_id: string; destinations: string[]; description: string | null; created_at: string; updated_at: string };

const post = (json: unknown, key = ADMIN_TOKEN) => call("/admin/aliases", { method: "POST", key, json });

describe("alias admin API", () => {
  it("creates, reads, lists, changes and deletes an alias", async () => {
    const domain = `${unique("al")}.example`;
    const { tenantId } = await createTenantWithKey([domain]);
    const created = await post({ address: `Sales@${domain}`, tenant_id: tenantId, destinations: ["ann@dest.example", "ANN@dest.example", "bo@dest.example"], description: "sales team" });
    expect(created.status).toBe(201);
    const alias = (await created.json()) as AliasView;
    // Stored lowercase; duplicate destinations (any case) collapse.
    expect(alias).toMatchObject({ address: `sales@${domain}`, tenant_id: tenantId, destinations: ["ann@dest.example", "bo@dest.example"], description: "sales team" });

    const one = (await (await call(`/admin/aliases/SALES@${domain}`, { key: ADMIN_TOKEN })).json()) as AliasView;
    expect(one.address).toBe(`sales@${domain}`);
    await post({ address: `info@${domain}`, tenant_id: tenantId, destinations: ["x@dest.example"] });
    const other = await createTenantWithKey([`${unique("al")}.example`]);
    const list = (await (await call(`/admin/aliases?tenant_id=${tenantId}&limit=1`, { key: ADMIN_TOKEN })).json()) as { data: AliasView[]; next_cursor: string | null };
    expect(list.data.map((a) => a.address)).toEqual([`info@${domain}`]);
    const rest = (await (await call(`/admin/aliases?tenant_id=${tenantId}&limit=1&cursor=${encodeURIComponent(list.next_cursor!)}`, { key: ADMIN_TOKEN })).json()) as { data: AliasView[] };
    expect(rest.data.map((a) => a.address)).toEqual([`sales@${domain}`]);
    const none = (await (await call(`/admin/aliases?tenant_id=${other.tenantId}`, { key: ADMIN_TOKEN })).json()) as { data: AliasView[] };
    expect(none.data).toEqual([]);

    const patched = await call(`/admin/aliases/sales@${domain}`, { method: "PATCH", key: ADMIN_TOKEN, json: { destinations: ["cy@dest.example"] } });
    expect(patched.status).toBe(200);
    expect((await patched.json()) as AliasView).toMatchObject({ destinations: ["cy@dest.example"], description: "sales team" });
    const cleared = (await (await call(`/admin/aliases/sales@${domain}`, { method: "PATCH", key: ADMIN_TOKEN, json: { description: null } })).json()) as AliasView;
    expect(cleared).toMatchObject({ destinations: ["cy@dest.example"], description: null });

    expect((await call(`/admin/aliases/sales@${domain}`, { method: "DELETE", key: ADMIN_TOKEN })).status).toBe(200);
    expect((await call(`/admin/aliases/sales@${domain}`, { key: ADMIN_TOKEN })).status).toBe(404);
    expect((await call(`/admin/aliases/sales@${domain}`, { method: "DELETE", key: ADMIN_TOKEN })).status).toBe(404);
  });

  it("refuses bad input with the field named", async () => {
    const domain = `${unique("ae")}.example`;
    const { tenantId } = await createTenantWithKey([domain]);
    const err = async (r: Response) => ({ status: r.status, ...((await r.json()) as { error: { code: string; field?: string } }).error });
    expect(await err(await post({ tenant_id: tenantId, destinations: ["a@b.example"] }))).toMatchObject({ status: 400, code: "missing_field", field: "address" });
    expect(await err(await post({ address: "not an address", tenant_id: tenantId, destinations: ["a@b.example"] }))).toMatchObject({ status: 400, field: "address" });
    expect(await err(await post({ address: `a@${domain}`, tenant_id: tenantId, destinations: [] }))).toMatchObject({ status: 400, field: "destinations" });
    expect(await err(await post({ address: `a@${domain}`, tenant_id: tenantId, destinations: ["ok@b.example", "bad address"] }))).toMatchObject({ status: 400, code: "invalid_recipient", field: "destinations[1]" });
    expect(await err(await post({ address: `a@${domain}`, tenant_id: tenantId, destinations: [`A@${domain}`] }))).toMatchObject({ status: 400, field: "destinations[0]" });
    expect(await err(await post({ address: `a@${domain}`, tenant_id: tenantId, destinations: Array.from({ length: 51 }, (_, i) => `d${i}@b.example`) }))).toMatchObject({ status: 422, code: "too_many_recipients" });
    expect(await err(await post({ address: `bounce+abc-0-abcdefghij@${domain}`, tenant_id: tenantId, destinations: ["a@b.example"] }))).toMatchObject({ status: 400, field: "address" });
    expect(await err(await post({ address: `SRS0=abcd=AB=x.example=y@${domain}`, tenant_id: tenantId, destinations: ["a@b.example"] }))).toMatchObject({ status: 400, field: "address" });
    expect(await err(await call("/admin/aliases", { method: "POST", key: ADMIN_TOKEN, headers: { "content-type": "application/json" }, body: "{" }))).toMatchObject({ status: 400, code: "invalid_json" });
    expect((await post({ address: `a@${domain}`, tenant_id: tenantId, destinations: ["a@b.example"] })).status).toBe(201);
    expect(await err(await post({ address: `A@${domain}`, tenant_id: tenantId, destinations: ["c@b.example"] }))).toMatchObject({ status: 409, code: "conflict" });
    expect(await err(await call(`/admin/aliases/nobody@${domain}`, { method: "PATCH", key: ADMIN_TOKEN, json: { destinations: ["a@b.example"] } }))).toMatchObject({ status: 404 });
  });

  it("only lets an alias live at a sender domain of its own tenant, and only for the admin token", async () => {
    const mine = `${unique("as")}.example`;
    const theirs = `${unique("as")}.example`;
    const { tenantId, key } = await createTenantWithKey([mine]);
    await createTenantWithKey([theirs]);
    const r = await post({ address: `ceo@${theirs}`, tenant_id: tenantId, destinations: ["me@evil.example"] });
    expect(r.status).toBe(403);
    expect(await r.json()).toMatchObject({ error: { code: "sender_domain_not_allowed", field: "address" } });
    expect((await post({ address: `x@unowned-${unique()}.example`, tenant_id: tenantId, destinations: ["a@b.example"] })).status).toBe(403);
    // A subdomain of the tenant's domain is the tenant's.
    expect((await post({ address: `x@lists.${mine}`, tenant_id: tenantId, destinations: ["a@b.example"] })).status).toBe(201);

    expect((await call("/admin/aliases", { key })).status).toBe(401);
    expect((await post({ address: `y@${mine}`, tenant_id: tenantId, destinations: ["a@b.example"] }, key)).status).toBe(401);
    expect((await call(`/admin/aliases/x@lists.${mine}`)).status).toBe(401);
    expect((await call(`/admin/aliases/x@lists.${mine}`, { method: "DELETE", key: "wrong" })).status).toBe(401);
    expect((await call(`/admin/aliases/x@lists.${mine}`, { key: ADMIN_TOKEN })).status).toBe(200);
  });
});

describe("inbound log admin API", () => {
  it("lists what the email() handler did, newest first, filtered by tenant, kind and outcome, for the admin token only", async () => {
    const domain = `${unique("il")}.example`;
    const { tenantId, key } = await createTenantWithKey([domain]);
    const now = Date.now();
    for (const [kind, outcome] of [["bounce", "unattributed"], ["complaint", "recorded"], ["bounce", "recorded"]]) {
      await env.DB.prepare("INSERT INTO inbound_messages (at, envelope_from, envelope_to, kind, outcome, tenant_id, detail) VALUES (?, '', ?, ?, ?, ?, 'd')")
        .bind(now, `x@bounces.${domain}`, kind, outcome, tenantId)
        .run();
    }
    const page = (await (await call(`/admin/inbound?tenant_id=${tenantId}&kind=bounce&limit=1`, { key: ADMIN_TOKEN })).json()) as { data: { kind: string; outcome: string; envelope_to: string; at: string }[]; next_cursor: string };
    expect(page.data).toEqual([expect.objectContaining({ kind: "bounce", outcome: "recorded", envelope_to: `x@bounces.${domain}`, at: new Date(now).toISOString() })]);
    const next = (await (await call(`/admin/inbound?tenant_id=${tenantId}&kind=bounce&limit=1&cursor=${page.next_cursor}`, { key: ADMIN_TOKEN })).json()) as { data: { outcome: string }[] };
    expect(next.data.map((r) => r.outcome)).toEqual(["unattributed"]);
    const unattributed = (await (await call(`/admin/inbound?tenant_id=${tenantId}&outcome=unattributed`, { key: ADMIN_TOKEN })).json()) as { data: unknown[] };
    expect(unattributed.data).toHaveLength(1);
    expect((await call(`/admin/inbound?cursor=abc`, { key: ADMIN_TOKEN })).status).toBe(400);
    expect((await call("/admin/inbound", { key })).status).toBe(401);
    expect((await call("/admin/inbound")).status).toBe(401);
  });
});
