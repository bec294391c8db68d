// What else the machine was doing while a benchmark measured: the CPU time of every process (from
// /proc/stat, all cores) minus this process's own (process.cpuUsage: every thread of it, workers
// included), over the wall time of the measurement, in cores. Where /proc/stat is missing (not Linux),
// the 1-minute load average stands in. Also: a busy core on demand (a second process spinning), for the
// rows that show how a backend behaves when it does not have the whole machine.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import os from "node:os";

/** Busy and total jiffies of all cores (steal counts as busy: the hypervisor gave the core to others). */
function ticks() {
  try {
    const v = readFileSync("/proc/stat", "utf8").split("\n", 1)[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal] = v.map((x) => x || 0);
    const busy = user + nice + system + irq + softirq + steal;
    return { busy, total: busy + idle + iowait };
  } catch {
    return undefined;
  }
}

/**
 * Starts a measurement; `stop()` gives { wallMs, own, busy, foreign, loadavg }: cores used by this
 * process, by the whole machine, and by everything else (busy - own, never below 0), over the interval.
 */
export function meter() {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const k0 = ticks();
  return {
    stop() {
      const wallMs = performance.now() - t0;
      const c = process.cpuUsage(c0);
      const own = (c.user + c.system) / 1000 / wallMs;
      const k1 = ticks();
      const cores = os.cpus().length;
      const loadavg = os.loadavg()[0];
      if (!k0 || !k1 || k1.total === k0.total)
        return {
          wallMs,
          own,
          busy: undefined,
          foreign: Math.max(0, loadavg - own),
          loadavg,
          from: "loadavg",
        };
      const busy = ((k1.busy - k0.busy) / (k1.total - k0.total)) * cores;
      return { wallMs, own, busy, foreign: Math.max(0, busy - own), loadavg, from: "/proc/stat" };
    },
  };
}

/** `n` processes that each spin on a core until `stop()` (a busy core, as another program would keep it). */
export function spinners(n) {
  const ps = Array.from({ length: n }, () =>
    spawn(process.execPath, ["-e", "for (;;) {}"], { stdio: "ignore" }),
  );
  return {
    async stop() {
      await Promise.all(
        ps.map(
          (p) =>
            new Promise((resolve) => {
              if (p.exitCode !== null || p.signalCode !== null) return resolve();
              p.once("exit", resolve);
              p.kill("SIGKILL");
            }),
        ),
      );
    },
  };
}

/** "0.3 (load avg 5.1)": the foreign cores of a measurement, for a table cell. */
export function foreignText(m) {
  if (!m) return "-";
  return `${m.foreign.toFixed(1)}`;
}

/** The machine in one line: CPU model, cores, Node. */
export function machine() {
  return `${os.cpus()[0].model}, ${os.cpus().length} cores, Node ${process.version}`;
}
