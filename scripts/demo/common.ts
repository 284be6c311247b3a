/**
 * What every demo shares: the built bundles, the demo's clock, the night office-hours gives it, and the
 * lease table the bundles take their leases in.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { bundledSchedules } from '#functions/rds-scheduler/schedules.ts';
import { leaseTableName } from '#shared/lease.ts';
import { ensureLocalLeaseTable } from '#shared/lease-table.ts';
import type { Report } from '#shared/report.ts';
import { nextTransition } from '#shared/schedules.ts';

export type Handler = (event: unknown, context: unknown) => Promise<Report>;

// The reports are the show; keep the function's own structured logs to warnings, and its EMF metric
// lines (for CloudWatch) out of the terminal.
process.env.POWERTOOLS_LOG_LEVEL ??= 'WARN';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';

export const step = (title: string) =>
  console.log(`\n=== ${title} ${'='.repeat(Math.max(0, 76 - title.length))}`);

/** The handler of a built bundle (dist/<fn>/index.mjs), as Lambda loads it. */
export const loadHandler = async (name: string): Promise<Handler> => {
  const bundle = pathToFileURL(resolve(`dist/${name}/index.mjs`)).href;
  return ((await import(bundle)) as { handler: Handler }).handler;
};

/**
 * The demo's clock. A reconcile decides from the time of day, and the bundles read it as a deployed
 * function does (`new Date()`); the demo sets it to the evening and the morning of a coming working day
 * instead of waiting for them. Only this process's Date is moved (moto keeps the real clock).
 */
export const RealDate = Date;
let clockOffset = 0;
const demoNow = () => RealDate.now() + clockOffset;
export const installDemoClock = () => {
  globalThis.Date = new Proxy(RealDate, {
    construct: (target, args, newTarget) =>
      Reflect.construct(target, args.length > 0 ? args : [demoNow()], newTarget) as object,
    apply: () => new RealDate(demoNow()).toString(),
    get: (target, property, receiver) =>
      property === 'now' ? demoNow : (Reflect.get(target, property, receiver) as unknown),
  });
};
export const setClock = (at: Date) => {
  clockOffset = at.getTime() - RealDate.now();
};
/** How far the demo's clock is ahead of the real one (moto's), in ms. */
export const clockAhead = () => clockOffset;

/**
 * The next night `schedule` (infra/schedules.yml, the file the bundles carry) stops in the evening and
 * starts the next morning — not a weekend, not a holiday — from tomorrow on: `evening` and `morning` are
 * 5 minutes after those transitions.
 */
export const nextNight = (scheduleName: string): { evening: Date; morning: Date; zone: string } => {
  const schedule = bundledSchedules().get(scheduleName);
  if (!schedule) throw new Error(`schedule ${scheduleName} not in infra/schedules.yml`);
  let at = new RealDate(RealDate.now() + 24 * 3_600_000);
  for (let i = 0; i < 60; i++) {
    const stop = nextTransition(schedule, at);
    if (!stop) break;
    const start = stop.to === 'stopped' ? nextTransition(schedule, stop.at) : undefined;
    if (start?.to === 'running' && start.at.getTime() - stop.at.getTime() < 16 * 3_600_000) {
      const later = (t: Date) => new RealDate(t.getTime() + 5 * 60_000);
      return { evening: later(stop.at), morning: later(start.at), zone: schedule.timezone };
    }
    at = start?.at ?? stop.at;
  }
  throw new Error(`no overnight stop and start of ${scheduleName} found in the coming months`);
};

export const localTime = (at: Date, zone: string) =>
  new Intl.DateTimeFormat('en-GB', {
    timeZone: zone,
    weekday: 'short',
    day: 'numeric',
    month: 'short',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).format(at) + ` ${zone}`;

/**
 * The stage's lease table, created in moto as `nightshift --local` does against an emulator: the
 * bundles take their leases there (LEASE_TABLE is set by the stack when deployed).
 */
export const demoLeaseTable = async (): Promise<{ dynamo: DynamoDBClient; table: string }> => {
  const table = leaseTableName('demo');
  const dynamo = new DynamoDBClient({});
  await ensureLocalLeaseTable(dynamo, table);
  process.env.LEASE_TABLE = table;
  console.log(`lease table ${table}`);
  return { dynamo, table };
};
