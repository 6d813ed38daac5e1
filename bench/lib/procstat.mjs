/** Reads CPU time and peak memory of processes from /proc (Linux), for the runtime's own cost. */
import { readdirSync, readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100; // USER_HZ on Linux (sysconf(_SC_CLK_TCK)), fixed at 100 on every mainstream kernel.

function stat(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    // comm may contain spaces: the fields after it start behind the last ")".
    const close = s.lastIndexOf(")");
    const comm = s.slice(s.indexOf("(") + 1, close);
    const f = s.slice(close + 2).split(" ");
    return { comm, ppid: Number(f[1]), utime: Number(f[11]), stime: Number(f[12]) };
  } catch {
    return null;
  }
}

/** Processes below `root` (any depth) whose command name starts with `name`. */
export function descendantPids(root, name) {
  const children = new Map();
  const comm = new Map();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const s = stat(Number(d));
    if (!s) continue;
    comm.set(Number(d), s.comm);
    const list = children.get(s.ppid) ?? [];
    list.push(Number(d));
    children.set(s.ppid, list);
  }
  const out = [];
  const walk = (pid) => {
    for (const c of children.get(pid) ?? []) {
      if (comm.get(c)?.startsWith(name)) out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

/** User+system CPU seconds used so far by the given processes. */
export function cpuSeconds(pids) {
  let ticks = 0;
  for (const p of pids) {
    const s = stat(p);
    if (s) ticks += s.utime + s.stime;
  }
  return ticks / TICKS_PER_SECOND;
}

/** Peak resident set size (VmHWM) in bytes, summed over the given processes. */
export function peakRssBytes(pids) {
  let kb = 0;
  for (const p of pids) {
    try {
      const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/status`, "utf8"));
      if (m) kb += Number(m[1]);
    } catch {
      /* exited */
    }
  }
  return kb * 1024;
}
