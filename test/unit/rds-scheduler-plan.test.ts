/** rds-scheduler's input contract and its pure planner, with a fixed `now`. */
import { describe, expect, it } from 'vitest';
import { parseRdsSchedulerEvent } from '#events/rds-scheduler/schema.ts';
import type { Database, Estate } from '#functions/rds-scheduler/inventory.ts';
import {
  planAction,
  planReconcile,
  planRestarted,
  type ReconcileOptions,
} from '#functions/rds-scheduler/plan.ts';
import { bundledSchedules } from '#functions/rds-scheduler/schedules.ts';
import { planDigest } from '#shared/plan-digest.ts';
import { DEFAULT_PROTECTED_TAGS } from '#shared/tags.ts';

const NOW = new Date('2026-11-30T19:00:00Z'); // Monday 20:00 in Berlin: office-hours wants stopped
const arn = (id: string) => `arn:aws:rds:eu-central-1:123456789012:db:${id}`;
const db = (id: string, over: Partial<Database> = {}): Database => ({
  kind: 'instance',
  id,
  arn: arn(id),
  status: 'available',
  engine: 'postgres',
  tags: {},
  replicas: [],
  multiAz: false,
  createdAt: new Date('2026-01-01T00:00:00Z'),
  ...over,
});
const estate = (...instances: Database[]): Estate => ({ instances, clusters: [] });
const opts = (over: Partial<ReconcileOptions> = {}): ReconcileOptions => ({
  protectedTags: DEFAULT_PROTECTED_TAGS,
  now: NOW,
  force: false,
  schedules: bundledSchedules(),
  graceMs: 15 * 60_000,
  startedAt: new Map(),
  overrideMaxMs: 24 * 3_600_000,
  ...over,
});

describe('rds-scheduler input', () => {
  it('refuses an unscoped stop, naming the field', () => {
    expect(() => parseRdsSchedulerEvent({ action: 'stop' })).toThrow(
      /field "instances": instances, clusters or tags is required/,
    );
  });

  it('refuses an unknown field, naming it', () => {
    expect(() => parseRdsSchedulerEvent({ action: 'stop', instances: ['a'], services: ['web'] })).toThrow(
      /unknown field\(s\) services/,
    );
  });

  it('refuses a scope on reconcile and a bad identifier', () => {
    expect(() => parseRdsSchedulerEvent({ action: 'reconcile', instances: ['a'] })).toThrow(
      /reconcile takes no scope/,
    );
    expect(() => parseRdsSchedulerEvent({ action: 'stop', instances: ['bad_name'] })).toThrow(
      /field "instances.0": expected a DB instance identifier or ARN/,
    );
  });

  it('accepts identifiers, ARNs, tags, force and a plan digest', () => {
    expect(
      parseRdsSchedulerEvent({
        action: 'start',
        instances: [arn('shop-db')],
        clusters: ['reports'],
        tags: { team: 'shop' },
        force: true,
        planDigest: 'a'.repeat(64),
      }),
    ).toMatchObject({ action: 'start', force: true });
  });
});

describe('rds-scheduler planner', () => {
  it('waits for a starting database instead of sending a stop, and for a stopping one on a start', () => {
    const stop = planAction(
      { action: 'stop', instances: ['a'] },
      estate(db('a', { status: 'starting' })),
      opts(),
    );
    const start = planAction(
      { action: 'start', instances: ['a'] },
      estate(
        db('a', {
          status: 'stopping',
          tags: { 'nightshift:stopped': 'at=2026-11-30T18:00:00Z by=nightshift' },
        }),
      ),
      opts(),
    );
    expect(stop.map((r) => [r.hasWork, r.later, r.detail])).toEqual([
      [false, 'waiting', 'waiting for a: starting; a later run stops it once it is available'],
    ]);
    expect(start.map((r) => [r.hasWork, r.later])).toEqual([[false, 'waiting']]);
  });

  it('keeps the plan digest of a stop the same a few minutes later (no clock in it)', () => {
    const at = (now: Date) =>
      planDigest(planAction({ action: 'stop', instances: ['a'] }, estate(db('a')), opts({ now })));
    expect(at(NOW)).toBe(at(new Date(NOW.getTime() + 3 * 60_000)));
  });

  it('reconciles: a grace period, another stage, an unknown schedule, an active and an expired override', () => {
    const scheduled = { 'nightshift:schedule': 'office-hours' };
    const plan = planReconcile(
      estate(
        db('new', { tags: scheduled, createdAt: new Date(NOW.getTime() - 5 * 60_000) }),
        db('theirs', { tags: { ...scheduled, 'nightshift:stage': 'prod' } }),
        db('typo', { tags: { 'nightshift:schedule': 'office-hour' } }),
        db('woken', {
          status: 'stopped',
          tags: {
            ...scheduled,
            'nightshift:stopped': 'at=2026-11-30T18:00:00Z by=nightshift',
            'nightshift:override': 'state=running until=2026-11-30T21:00:00Z by=user/jane why=release',
          },
        }),
        db('expired', {
          tags: {
            ...scheduled,
            'nightshift:override': 'state=running until=2026-11-30T18:30:00Z by=user/jane',
          },
        }),
      ),
      opts({ stage: 'dev' }),
    );
    const row = (id: string) => plan.rows.find((r) => r.id === id);
    expect(plan.rows.map((r) => r.id)).toEqual(['new', 'typo', 'woken', 'expired']);
    expect(row('new')).toMatchObject({ outcome: 'skipped', hasWork: false });
    expect(row('new')?.detail).toContain('SCHEDULE_GRACE_MINUTES');
    expect(row('typo')).toMatchObject({ outcome: 'failed' });
    expect(row('woken')?.steps.map((s) => s.op)).toEqual(['start', 'untag-stopped']);
    expect(row('woken')?.detail).toMatch(
      /^override by user\/jane until Mon 22:00 Europe\/Berlin \(why: release\), over office-hours/,
    );
    expect(plan.overrideStarts.get(arn('woken'))).toEqual(new Date('2026-11-30T21:00:00Z'));
    expect(row('expired')?.steps.map((s) => s.op)).toEqual(['tag-stopped', 'stop', 'clear-override']);
    expect(row('expired')?.detail).toContain('override by user/jane ended at Mon 19:30');
  });

  it('says on a reconcile that an Aurora instance with its own schedule tag follows its cluster', () => {
    const member = db('reports-1', { memberOf: 'reports', tags: { 'nightshift:schedule': 'office-hours' } });
    const plan = planReconcile(estate(member), opts());
    expect(plan.rows.map((r) => [r.id, r.outcome, r.hasWork])).toEqual([['reports-1', 'skipped', false]]);
    expect(plan.rows[0]?.detail).toMatch(
      /^member of cluster reports: its own nightshift:schedule is not read/,
    );
  });

  it('on an RDS event, stops again only what nightshift stopped and no active override keeps running', () => {
    const ours = { 'nightshift:stopped': 'at=2026-11-23T18:00:00Z by=nightshift' };
    const plan = (d: Database) => planRestarted(d.arn, 'RDS-EVENT-0088', estate(d), opts()).rows[0];
    expect(plan(db('a', { tags: ours }))?.steps.map((s) => s.op)).toEqual(['tag-stopped', 'stop']);
    expect(plan(db('b'))).toMatchObject({ hasWork: false, outcome: 'unchanged' });
    expect(
      plan(
        db('c', {
          tags: { ...ours, 'nightshift:override': 'state=running until=2026-11-30T21:00:00Z by=user/jane' },
        }),
      ),
    ).toMatchObject({ hasWork: false, outcome: 'unchanged' });
  });
});

describe('what rds-scheduler never stops', () => {
  it('leaves Neptune and DocumentDB (listed by the RDS API) alone, and skips RDS Custom SQL Server Multi-AZ', () => {
    // Act
    const rows = planAction(
      { action: 'stop', instances: ['graph', 'docs', 'custom-mssql', 'custom-single'] },
      estate(
        db('graph', { engine: 'neptune' }),
        db('docs', { engine: 'docdb' }),
        db('custom-mssql', { engine: 'custom-sqlserver-ee', multiAz: true }),
        db('custom-single', { engine: 'custom-sqlserver-ee' }),
      ),
      opts(),
    );

    // Assess
    expect(rows.map((r) => [r.id, r.outcome ?? 'work', r.detail.split(':')[0]])).toEqual([
      ['graph', 'skipped', 'Neptune (engine neptune)'],
      ['docs', 'skipped', 'DocumentDB (engine docdb)'],
      ['custom-mssql', 'skipped', 'SQL Server Multi-AZ'],
      ['custom-single', 'work', 'available'],
    ]);
  });
});
