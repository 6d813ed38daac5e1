/** Which D1 failures mean "the database is unavailable for now" (503 + Retry-After) and which stay defects (500). */
import { describe, expect, it } from "vitest";
import { isD1Unavailable } from "../../src/store/d1-errors";

describe("isD1Unavailable", () => {
  it("recognises the transient failures of D1's error list", () => {
    for (const message of [
      "D1_ERROR: Network connection lost.",
      "D1_ERROR: D1 DB is overloaded. Requests queued for too long.",
      "D1_ERROR: Internal error while starting up D1 DB storage caused object to be reset.",
      "D1_ERROR: D1 DB reset because its code was updated.",
      "D1_ERROR: D1 DB storage operation exceeded timeout which caused object to be reset.",
      "D1_ERROR: D1 DB's isolate exceeded its memory limit and was reset.",
      "D1_ERROR: Cannot resolve D1 DB due to transient issue on remote node.",
    ]) {
      expect(isD1Unavailable(new Error(message)), message).toBe(true);
    }
  });

  it("finds one wrapped as a cause (onEveryShard names the shard and keeps the D1 error)", () => {
    const wrapped = new Error("ledger shard LEDGER_1 failed", { cause: new Error("D1_ERROR: Network connection lost.") });
    expect(isD1Unavailable(wrapped)).toBe(true);
  });

  it("leaves SQL errors, constraints, other errors and non-errors alone", () => {
    expect(isD1Unavailable(new Error("D1_ERROR: no such table: messages: SQLITE_ERROR"))).toBe(false);
    expect(isD1Unavailable(new Error("D1_ERROR: UNIQUE constraint failed: messages.id: SQLITE_CONSTRAINT"))).toBe(false);
    expect(isD1Unavailable(new TypeError("Cannot read properties of undefined"))).toBe(false);
    expect(isD1Unavailable("Network connection lost")).toBe(false);
    expect(isD1Unavailable(undefined)).toBe(false);
  });
});
