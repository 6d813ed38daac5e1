/**
 * The load generator: N messages through the relay's HTTP API from C concurrent clients, one message per
 * request (POST /v1/messages) or many per request (POST /v1/messages/batch). Records, per message, when its
 * request was answered and how long it took.
 */

/** A ~`size`-byte plain-text body: lines of printable ASCII, the shape of a typical transactional mail. */
export function bodyText(size) {
  const line = "Your order has shipped and is on its way. Track it with the link in your account. ";
  let out = "";
  let i = 0;
  while (out.length < size) out += `${String(i++).padStart(4, "0")} ${line}\n`;
  return out.slice(0, size);
}

/** The JSON send request for message `i` of run `tag`; the recipient names the message so the sink can tell. */
export function sendRequest(tag, i, text, from, recipientDomain) {
  return { from, to: [`${tag}-${i}@${recipientDomain}`], subject: `Edge Relay benchmark ${tag} #${i}`, text };
}

/** The message index encoded in a recipient address by sendRequest, or -1. */
export function indexOfRecipient(tag, address) {
  const m = new RegExp(`^${tag}-(\\d+)@`).exec(address);
  return m ? Number(m[1]) : -1;
}

/**
 * Sends `count` messages from `concurrency` clients. `perRequest` > 1 uses the batch endpoint. `key` may be a list
 * (one per tenant, e.g. tenants on different ledger shards): request r uses key r mod n.
 * Returns per-message accept times (epoch ms, NaN if refused), per-request latencies and failures.
 */
export async function runLoad({ base, key, count, concurrency, perRequest, makeBody, progress = { sent: 0 } }) {
  const acceptedAt = new Float64Array(count).fill(Number.NaN);
  const latenciesMs = [];
  const failures = [];
  let next = 0;
  const path = perRequest > 1 ? "/v1/messages/batch" : "/v1/messages";
  const started = Date.now();
  const client = async () => {
    while (next < count) {
      const first = next;
      const n = Math.min(perRequest, count - first);
      next += n;
      const body = perRequest > 1 ? { messages: Array.from({ length: n }, (_, k) => makeBody(first + k)) } : makeBody(first);
      const t0 = performance.now();
      let res;
      try {
        res = await fetch(`${base}${path}`, {
          method: "POST",
          headers: { authorization: `Bearer ${Array.isArray(key) ? key[Math.floor(first / perRequest) % key.length] : key}`, "content-type": "application/json" },
          body: JSON.stringify(body),
        });
      } catch (e) {
        failures.push({ first, n, error: String(e) });
        continue;
      }
      const text = await res.text();
      const ms = performance.now() - t0;
      progress.sent += n;
      latenciesMs.push(ms);
      const at = Date.now();
      if (perRequest > 1) {
        if (res.status !== 200) {
          failures.push({ first, n, status: res.status, body: text.slice(0, 300) });
          continue;
        }
        const parsed = JSON.parse(text);
        for (const r of parsed.results ?? []) {
          if (r.id && r.status !== "failed") acceptedAt[first + r.index] = at;
          else failures.push({ first: first + r.index, n: 1, status: 200, body: JSON.stringify(r).slice(0, 300) });
        }
      } else if (res.status === 202) {
        acceptedAt[first] = at;
      } else {
        failures.push({ first, n: 1, status: res.status, body: text.slice(0, 300) });
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  return { started, finished: Date.now(), acceptedAt, latenciesMs, failures };
}
