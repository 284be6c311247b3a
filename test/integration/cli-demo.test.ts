/**
 * `npm run demo` keeps working: the built bundles against a private moto, with the lease table created
 * there (the bundles need LEASE_TABLE to change anything). The default demo takes an environment (a
 * database, a group and two services) through one night, in order; `npm run demo -- ecs` is the
 * ecs-scheduler demo on its own.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { motoTestsEnabled } from '#test/support/moto.ts';

const demo = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 110_000,
  });

/** The demo's steps (`=== title ===`), each with what it printed. */
const steps = (stdout: string) =>
  stdout
    .split(/^=== /m)
    .slice(1)
    .map((part) => {
      const [title = '', ...body] = part.split('\n');
      return { title: title.replace(/ =*$/, ''), body: body.join('\n') };
    });

describe.runIf(motoTestsEnabled())('the demo', () => {
  it('parks the environment at night, the database last, and wakes it in order in the morning, exactly as it was', () => {
    // Act
    const run = demo();

    // Assess: the steps, in this order
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('lease table nightshift-demo-leases');
    const all = steps(run.stdout);
    expect(all.map((s) => s.title)).toEqual([
      'starting a local AWS (moto) and seeding the environment shop',
      'evening: the database waits while its services run: rds-scheduler {"action":"reconcile"}',
      'evening: services and group parked: ecs-scheduler {"action":"reconcile"}',
      'estate: services and group parked, the database still up',
      '5 minutes later: everything of shop rests, the database stops: rds-scheduler {"action":"reconcile"}',
      'estate at night (state saved on the resources themselves)',
      'morning, while another run holds the database: refused, nothing changes: rds-scheduler {"action":"reconcile"}',
      'morning: the database starts first: rds-scheduler {"action":"reconcile"}',
      'morning: the services wait for the database: ecs-scheduler {"action":"reconcile"}',
      '5 minutes later, shop-db available: the group starts, the services wait for it: ecs-scheduler {"action":"reconcile"}',
      '10 minutes later, shop-batch in service: the services start: ecs-scheduler {"action":"reconcile"}',
      'estate in the morning',
    ]);
    const [
      seeded,
      dbWaits,
      parks,
      parked,
      dbStops,
      night,
      refused,
      dbStarts,
      servicesWait,
      groupStarts,
      servicesStart,
      after,
    ] = all.map((s) => s.body);
    expect(seeded).toMatch(/^ {2}database shop-db +available$/m);
    expect(seeded).toMatch(/^ {2}group {4}shop-batch +min 1 desired 2 max 4$/m);
    // Evening: the database waits, naming what runs; services and group parked; then the database stops
    expect(dbWaits).toMatch(
      /^db:shop-db +rds-db-instance +waiting +office-hours: stopped since \w{3} 19:00 Europe\/Berlin .*waiting for shop\/web: desiredCount 3, 3 task\(s\) running or pending; shop\/worker: desiredCount 2/m,
    );
    expect(dbWaits).toContain('reconcile: 0 changed, 0 planned, 0 unchanged, 0 skipped, 1 waiting, 0 failed');
    expect(parks).toMatch(/^shop\/web +ecs-service +changed +.*desiredCount 3 → 0/m);
    expect(parks).toMatch(/^shop-batch +autoscaling-group +changed +.*min 1→0, desired 2→0, max 4→0/m);
    expect(parked).toMatch(/^ {2}database shop-db +available$/m);
    expect(parked).toMatch(
      /^ {2}service {2}shop\/web +desired 0 .*\[nightshift:stopped = desired=3 min=2 max=6 /m,
    );
    expect(dbStops).toMatch(/^db:shop-db +rds-db-instance +changed +.*then StopDBInstance$/m);
    expect(night).toMatch(
      /^ {2}database shop-db +stopped {2}\[nightshift:stopped = at=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ by=nightshift\]$/m,
    );
    expect(night).toMatch(
      /^ {2}group {4}shop-batch +min 0 desired 0 max 0 {2}\[nightshift:stopped = min=1 desired=2 max=4 /m,
    );
    // Morning: a run refused while another holds the database; the database first; the services wait
    expect(refused).toMatch(
      /^db:shop-db +rds-db-instance +undone +another run holds the lease on it: rds-scheduler run 7c1d9e20 \(local:ops@laptop\)/m,
    );
    expect(dbStarts).toMatch(
      /^db:shop-db +rds-db-instance +changed +.*StartDBInstance, then removes nightshift:stopped/m,
    );
    for (const service of ['shop/web', 'shop/worker'])
      expect(servicesWait).toMatch(
        new RegExp(
          `^${service} +ecs-service +waiting +waiting for shop-db: starting \\(environment shop: databases start first\\)`,
          'm',
        ),
      );
    // The database ready, the group comes back while the services wait for it; a later run starts them
    expect(servicesWait).toMatch(/^shop-batch +autoscaling-group +waiting +waiting for shop-db: starting/m);
    expect(groupStarts).toMatch(/^shop-batch +autoscaling-group +changed /m);
    expect(groupStarts).toMatch(
      /^shop\/web +ecs-service +waiting +waiting for shop-batch: started by this run/m,
    );
    expect(servicesStart).toMatch(/^shop\/web +ecs-service +changed +.*desiredCount 0 → 3/m);
    expect(servicesStart).toMatch(/^shop\/worker +ecs-service +changed +.*desiredCount 0 → 2/m);
    // …and checked at the end: everything back exactly, in order
    expect(after).toContain('sent, in order: ');
    expect(after).toMatch(/stop-db, start-db, /);
    expect(after).toContain(
      'in order: the database stopped after every service was parked and started before any came back.',
    );
    expect(after).toContain(
      'came back exactly: the database, the group and every service are as they were, no saved state left.',
    );
    expect(after).toMatch(/^ {2}database shop-db +available$/m);
    expect(after).not.toContain('nightshift:stopped');
  });

  it('`-- ecs`: stops and starts the ECS sample estate with the lease table, and restores it exactly', () => {
    // Act
    const run = demo('ecs');

    // Assess
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('lease table nightshift-demo-leases');
    expect(run.stdout).toContain('stop: 4 changed, 0 planned, 0 unchanged, 0 skipped, 0 failed');
    // A start while another run holds the cluster changes nothing there.
    expect(run.stdout).toContain('a start while another run holds the cluster: refused, nothing changes');
    expect(run.stdout).toMatch(
      /another run holds the lease on it: ecs-scheduler run 7c1d9e20 \(local:ops@laptop\)/,
    );
    expect(run.stdout).toContain(
      'restored exactly: every service, scaling target and group is back as it was.',
    );
    expect(run.stdout).not.toContain('rds-scheduler');
  });

  it('refuses an unknown demo, naming the ones there are', () => {
    // Act
    const run = demo('nope');

    // Assess
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('no demo "nope": npm run demo [-- environment|ecs]');
  });
});
