// Small statistics and formatting helpers for the benchmark. Pure except the RSS/CPU samplers.

/** Nearest-rank percentile (p in [0, 100]) of the samples; NaN for no samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (!Number.isFinite(p) || p < 0 || p > 100) throw new RangeError(`percentile: p must be within 0-100, got ${p}`);
  if (samples.length === 0) return Number.NaN;
  const s = sortedCopy(samples);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** Median: the mean of the two middle samples for an even count; NaN for no samples. */
export function median(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  const s = sortedCopy(samples);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function mean(samples: readonly number[]): number {
  if (samples.length === 0) return Number.NaN;
  let sum = 0;
  for (const x of samples) sum += x;
  return sum / samples.length;
}

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** n, min, p50, p90, p99, max, mean in one pass over a sorted copy (NaN fields for no samples). */
export function summarize(samples: readonly number[]): Summary {
  if (samples.length === 0) return { n: 0, min: Number.NaN, p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, max: Number.NaN, mean: Number.NaN };
  const s = sortedCopy(samples);
  const rank = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
  return { n: s.length, min: s[0]!, p50: rank(50), p90: rank(90), p99: rank(99), max: s[s.length - 1]!, mean: mean(s) };
}

function sortedCopy(samples: readonly number[]): number[] {
  for (const x of samples) if (typeof x !== 'number' || Number.isNaN(x)) throw new TypeError(`statistics: sample ${String(x)} is not a number`);
  return Float64Array.from(samples).sort() as unknown as number[];
}

// ---------------------------------------------------------------- formatting

/** Rounds to `digits` decimals (default 1); keeps NaN/Infinity as they are. */
export function round(x: number, digits = 1): number {
  if (!Number.isFinite(x)) return x;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** Milliseconds for people: `0.42 ms`, `12.3 ms`, `1.23 s`, `2 min 5 s`; `–` for NaN. */
export function formatMs(ms: number): string {
  if (!Number.isFinite(ms)) return '–';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${ms < 100 ? ms.toFixed(1) : Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const min = Math.floor(ms / 60_000);
  return `${min} min ${Math.round((ms - min * 60_000) / 1000)} s`;
}

/** Bytes for people: `512 B`, `1.5 KiB`, `12.0 MiB`, `1.20 GiB`. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return '–';
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  if (bytes < 1024 ** 2) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (bytes < 1024 ** 3) return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/** Integer with thousands separators: 1234567 → `1,234,567`. */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return '–';
  const s = Math.round(Math.abs(n)).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return n < 0 ? `-${s}` : s;
}

/** `a / b` as `12.3×` (or `–` when b is 0 or either is not finite). */
export function formatRatio(a: number, b: number): string {
  if (!Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '–';
  const r = a / b;
  return `${r >= 100 ? Math.round(r) : r.toFixed(1)}×`;
}

/**
 * A plain text table: the first row is the header; numbers are right-aligned, text left-aligned;
 * columns separated by two spaces; a dashed line under the header.
 */
export function textTable(rows: readonly (readonly (string | number)[])[]): string {
  if (rows.length === 0) return '';
  const cols = Math.max(...rows.map((r) => r.length));
  const cells = rows.map((r) => Array.from({ length: cols }, (_, i) => (r[i] === undefined ? '' : String(r[i]))));
  const numeric = Array.from({ length: cols }, (_, i) => rows.slice(1).every((r) => r[i] === undefined || typeof r[i] === 'number' || /^[-+]?[\d,.]+(\s?(ms|s|×|%|MiB|KiB|B))?$|^–$/.test(String(r[i]))));
  const width = Array.from({ length: cols }, (_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => (numeric[i] && i > 0 ? c.padStart(width[i]!) : c.padEnd(width[i]!)))
      .join('  ')
      .trimEnd();
  const out = [line(cells[0]!), width.map((w) => '-'.repeat(w)).join('  ')];
  for (const r of cells.slice(1)) out.push(line(r));
  return out.join('\n');
}

// ---------------------------------------------------------------- process sampling

/** Peak resident set size of this process so far, in MiB (`process.resourceUsage().maxRSS` is KiB). */
export function peakRssMiB(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/** Current resident set size in MiB. */
export function currentRssMiB(): number {
  return process.memoryUsage.rss() / (1024 * 1024);
}

/**
 * Samples the current RSS every `intervalMs` (default 50) until `stop()`; returns the highest sample
 * and the kernel's peak (maxRSS) at stop. Useful to attribute a peak to one phase. The timer is unref'd.
 */
export function sampleRss(intervalMs = 50): { stop: () => { maxSampledMiB: number; peakMiB: number } } {
  let max = currentRssMiB();
  const timer = setInterval(() => {
    const r = currentRssMiB();
    if (r > max) max = r;
  }, intervalMs);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      const r = currentRssMiB();
      if (r > max) max = r;
      return { maxSampledMiB: max, peakMiB: peakRssMiB() };
    },
  };
}

/** Wall time and this process's CPU time (user + system) of a synchronous function, in ms. */
export function timed<T>(fn: () => T): { value: T; ms: number; cpuMs: number } {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const value = fn();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { value, ms, cpuMs: (cpu.user + cpu.system) / 1000 };
}

/** Same as `timed` for an async function. CPU time includes anything else running in this process meanwhile. */
export async function timedAsync<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number; cpuMs: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { value, ms, cpuMs: (cpu.user + cpu.system) / 1000 };
}
