/**
 * What every outside view of an event says about its attempt (the events API, a message's status, webhook
 * payloads): one shape and one mapper from the stored row, so the three cannot drift apart.
 */
export interface EventDetail {
  attempt: number | null;
  code: number | null;
  enhanced: string | null;
  text: string | null;
  host: string | null;
  tls: boolean | null;
  latency_ms: number | null;
}

/** The detail of a stored event row (`tls` is stored as 0/1). */
export function eventDetail(e: Omit<EventDetail, "tls"> & { tls: number | null }): EventDetail {
  return {
    attempt: e.attempt,
    code: e.code,
    enhanced: e.enhanced,
    text: e.text,
    host: e.host,
    tls: e.tls === null ? null : e.tls === 1,
    latency_ms: e.latency_ms,
  };
}
