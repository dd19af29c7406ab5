// Cron expressions (five fields, UTC) for backup schedules. Pure: parse once, ask for the latest
// scheduled minute at or before a time. Errors name the field and say what is accepted.

export interface Cron {
  source: string;
  minute: Set<number>;
  hour: Set<number>;
  dom: Set<number>;
  month: Set<number>;
  dow: Set<number>;
  /** both day fields restricted: a day matches when EITHER does (as cron does) */
  domOrDow: boolean;
}

const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *', '@annually': '0 0 1 1 *', '@monthly': '0 0 1 * *', '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *', '@midnight': '0 0 * * *', '@hourly': '0 * * * *',
};
const FIELDS = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12 },
  { name: 'day of week', min: 0, max: 7 },
] as const;

export class CronError extends Error {}

function field(text: string, f: (typeof FIELDS)[number], expr: string): Set<number> {
  const out = new Set<number>();
  const bad = (why: string) => new CronError(`cron "${expr}": ${f.name} "${text}" ${why} (accepted: *, a number ${f.min}-${f.max}, a range a-b, a list a,b, a step */n or a-b/n)`);
  for (const part of text.split(',')) {
    const m = part.match(/^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/);
    if (!m) throw bad('is not understood');
    const lo = m[1] === '*' ? f.min : Number(m[2]);
    const hi = m[1] === '*' ? f.max : m[3] !== undefined ? Number(m[3]) : m[4] !== undefined ? f.max : lo;
    const step = m[4] !== undefined ? Number(m[4]) : 1;
    if (lo < f.min || hi > f.max) throw bad(`is out of range`);
    if (lo > hi) throw bad('is a range that runs backwards');
    if (step < 1) throw bad('has a step below 1');
    for (let v = lo; v <= hi; v += step) out.add(f.name === 'day of week' && v === 7 ? 0 : v);
  }
  return out;
}

export function parseCron(expr: string): Cron {
  const src = expr.trim();
  const text = MACROS[src] ?? src;
  const parts = text.split(/\s+/);
  if (parts.length !== 5) throw new CronError(`cron "${expr}": expected five fields (minute hour day-of-month month day-of-week, in UTC) or one of ${Object.keys(MACROS).join(', ')}; got ${parts.length}`);
  const [minute, hour, dom, month, dow] = parts.map((p, i) => field(p, FIELDS[i]!, expr)) as [Set<number>, Set<number>, Set<number>, Set<number>, Set<number>];
  return { source: src, minute, hour, dom, month, dow, domOrDow: parts[2] !== '*' && parts[4] !== '*' };
}

function dayMatches(c: Cron, d: Date): boolean {
  if (!c.month.has(d.getUTCMonth() + 1)) return false;
  const dom = c.dom.has(d.getUTCDate()), dow = c.dow.has(d.getUTCDay());
  return c.domOrDow ? dom || dow : dom && dow;
}

const DAY = 86_400_000;

/** The latest scheduled minute at or before `atMs` (epoch ms), looking back at most `maxDays`; null if none. */
export function previousRun(c: Cron, atMs: number, maxDays = 400): number | null {
  const start = new Date(Math.floor(atMs / 60_000) * 60_000);
  const dayStart = Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), start.getUTCDate());
  const hours = [...c.hour].sort((a, b) => b - a), minutes = [...c.minute].sort((a, b) => b - a);
  for (let i = 0; i <= maxDays; i++) {
    const day = dayStart - i * DAY;
    if (!dayMatches(c, new Date(day))) continue;
    for (const h of hours) for (const m of minutes) {
      const t = day + h * 3_600_000 + m * 60_000;
      if (t <= start.getTime()) return t;
    }
  }
  return null;
}

/** The next scheduled minute strictly after `atMs`, looking ahead at most `maxDays`; null if none. */
export function nextRun(c: Cron, atMs: number, maxDays = 400): number | null {
  const from = Math.floor(atMs / 60_000) * 60_000 + 60_000;
  const dayStart = Date.UTC(new Date(from).getUTCFullYear(), new Date(from).getUTCMonth(), new Date(from).getUTCDate());
  const hours = [...c.hour].sort((a, b) => a - b), minutes = [...c.minute].sort((a, b) => a - b);
  for (let i = 0; i <= maxDays; i++) {
    const day = dayStart + i * DAY;
    if (!dayMatches(c, new Date(day))) continue;
    for (const h of hours) for (const m of minutes) {
      const t = day + h * 3_600_000 + m * 60_000;
      if (t >= from) return t;
    }
  }
  return null;
}
