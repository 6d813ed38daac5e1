/**
 * The bounce-side reputation signal: per destination provider, the share of recent failures whose reason says
 * the receiver distrusts the sender (blocked, badreputation, spamdetected, rejected, policyviolation). A
 * blocklisting often shows here before any list is checked. Pure apart from the types it reads.
 */
import { presetForMxHosts } from "../gate/policy";
import { classifyFailure, type BounceReason } from "../inbound/reason";
import type { FailureEventRow } from "../store/reputation";

/** The signal reads at most this many failure events of its window (the newest; one indexed range read). */
export const BOUNCE_SIGNAL_EVENTS = 5000;
export const BOUNCE_SIGNAL_WINDOW_MS = 24 * 3600_000;

export const REPUTATION_REASONS: readonly BounceReason[] = ["blocked", "badreputation", "spamdetected", "rejected", "policyviolation"];

export interface ProviderSignal {
  provider: string;
  failures: number;
  reputationFailures: number;
  share: number;
  level: "ok" | "warn" | "alert" | "few";
  reasons: Record<string, number>;
}

/** The failure's reason: the one an inbound bounce already recorded, else classified from the SMTP reply. */
export function reasonOfEvent(e: FailureEventRow): BounceReason {
  if (e.data) {
    try {
      const d = JSON.parse(e.data) as { reason?: unknown };
      if (typeof d.reason === "string" && d.reason) return d.reason as BounceReason;
    } catch {
      // Not JSON: classify from the reply below.
    }
  }
  return classifyFailure({
    status: e.enhanced ?? "",
    replyCode: e.code === null ? "" : String(e.code),
    diagnostic: e.text ?? "",
    command: "",
    action: e.type === "deferred" ? "delayed" : "failed",
    diagnosticType: "smtp",
  });
}

/** The provider a failure is about: a known large provider by MX host, else the recipient's domain. */
export function providerOf(e: FailureEventRow): string {
  const host = (e.host ?? "").replace(/:\d+$/, "").toLowerCase();
  const preset = host ? presetForMxHosts([host]) : undefined;
  if (preset) return preset.name;
  const at = e.recipient?.lastIndexOf("@") ?? -1;
  return at >= 0 ? e.recipient!.slice(at + 1).toLowerCase() : host || "unknown";
}

/** Groups failures by provider and grades each against the thresholds, worst first. */
export function bounceSignals(events: readonly FailureEventRow[], t: { warnShare: number; alertShare: number; minFailures: number }): ProviderSignal[] {
  const by = new Map<string, ProviderSignal>();
  for (const e of events) {
    const p = providerOf(e);
    const s = by.get(p) ?? { provider: p, failures: 0, reputationFailures: 0, share: 0, level: "ok" as const, reasons: {} };
    s.failures++;
    const reason = reasonOfEvent(e);
    if (REPUTATION_REASONS.includes(reason)) {
      s.reputationFailures++;
      s.reasons[reason] = (s.reasons[reason] ?? 0) + 1;
    }
    by.set(p, s);
  }
  const out = [...by.values()].map((s) => {
    const share = s.failures ? s.reputationFailures / s.failures : 0;
    const level: ProviderSignal["level"] = s.failures < t.minFailures ? "few" : share >= t.alertShare ? "alert" : share >= t.warnShare ? "warn" : "ok";
    return { ...s, share, level };
  });
  const rank = { alert: 0, warn: 1, ok: 2, few: 3 };
  return out.sort((a, b) => rank[a.level] - rank[b.level] || b.reputationFailures - a.reputationFailures).slice(0, 50);
}
