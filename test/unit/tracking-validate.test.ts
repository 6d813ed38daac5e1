import { describe, expect, it } from "vitest";
import { validateSendRequest } from "../../src/mime/validate";

const base = { from: "a@example.com", to: ["b@example.net"], subject: "s", html: "<p>x</p>" };

describe("validateSendRequest: track_opens / track_clicks", () => {
  it("leaves them out when not given (the tenant's settings apply)", () => {
    const v = validateSendRequest(base);
    expect(v.ok && "track_opens" in v.value).toBe(false);
    expect(v.ok && "track_clicks" in v.value).toBe(false);
    const nulls = validateSendRequest({ ...base, track_opens: null, track_clicks: null });
    expect(nulls.ok && nulls.value.track_opens === undefined && nulls.value.track_clicks === undefined).toBe(true);
  });

  it("takes booleans", () => {
    const v = validateSendRequest({ ...base, track_opens: true, track_clicks: false });
    expect(v).toMatchObject({ ok: true, value: { track_opens: true, track_clicks: false } });
  });

  it("refuses anything else, naming the field", () => {
    expect(validateSendRequest({ ...base, track_opens: "yes" })).toEqual({ ok: false, error: { code: "invalid_field", message: "track_opens must be true or false", field: "track_opens" } });
    expect(validateSendRequest({ ...base, track_clicks: 1 })).toMatchObject({ ok: false, error: { field: "track_clicks" } });
  });
});
