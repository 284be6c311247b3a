/**
 * `npm run demo` keeps working: the built bundles against a private moto, with the lease table created
 * there (the bundles need LEASE_TABLE to change anything). The default demo is the whole night shift —
 * a dry run, the environment parked with its alarms silenced, snapshots tagged and copied, an instance
 * rotated, an alarm restart and one refused, a wake override, the morning in order, and a check that
 * everything came back exactly — with `nightshift status` after each step. `npm run demo -- environment`
 * takes the environment alone through one night; `npm run demo -- ecs` is the ecs-scheduler demo.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { motoTestsEnabled } from '#test/support/moto.ts';
import { differences } from '#test/support/night-estate.ts';

// A whole night is about 40 s on a loaded 2-core machine: the limits are for hangs, not for speed.
const demo = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'scripts/demo.ts', ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 170_000,
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

/** The report tables a step printed (shared/report-text.ts formatReport): their header and summary. */
const REPORT_TABLE =
  /^RESOURCE +TYPE +OUTCOME +DETAIL\n[\s\S]*?^\w[\w -]*(?: \(dry run\))?: \d+ changed, \d+ planned, /m;
const STATUS = '--- nightshift status --local --stage demo (';

describe.runIf(motoTestsEnabled())('the demo', () => {
  it('lives the whole night: each step prints its reports and nightshift status, and everything comes back exactly', () => {
    // Act
    const run = demo();

    // Assess: the steps, in this order
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    const all = steps(run.stdout);
    expect(all.map((s) => s.title.replace(/, \w{3} \d+ \w{3}, \d\d:\d\d Europe\/Berlin/, ''))).toEqual([
      'the estate: a local AWS (moto), the environment shop and what runs beside it',
      '1. evening dry run: what the night will do',
      '2. the environment parked: services, group, database, alarms silenced',
      '3. snapshots: ledger-db-nightly tagged and copied to eu-west-1',
      '4. instance rotation: one instance of ops-runners replaced',
      '5. alarms fire: one restart, one refused (its target is parked)',
      '6. a wake override: shop-db up for 30 minutes',
      '7. the morning: the database, then the group, then the services',
      '8. the end: did everything come back exactly?',
    ]);
    const [
      estate = '',
      dryRun = '',
      parked = '',
      snapshots = '',
      rotation = '',
      alarms = '',
      wake = '',
      morning = '',
      end = '',
    ] = all.map((s) => s.body);
    expect(estate).toContain(
      'DisableAlarmActions / EnableAlarmActions (moto: 500): answered as CloudWatch does',
    );
    expect(estate).toContain('lease table nightshift-demo-leases');
    // Every step of the night printed its report tables, then the real `nightshift status`
    for (const body of [dryRun, parked, snapshots, rotation, alarms, wake, morning]) {
      expect(body).toMatch(REPORT_TABLE);
      expect(body).toContain(STATUS);
      expect(body.indexOf(STATUS)).toBeGreaterThan(body.search(REPORT_TABLE));
      expect(body.slice(body.indexOf(STATUS))).toMatch(/^Parked by nightshift/m);
    }
    // 1. The dry run plans the night and changes nothing: only reads reached AWS, and the park is planned
    expect(dryRun).toMatch(/^shop\/web +ecs-service +planned +.*desiredCount 3 → 0/m);
    expect(dryRun).toMatch(
      /^alarm:shop-web-5xx +cloudwatch-alarm +planned +alarm shop-web-5xx: disable actions/m,
    );
    expect(dryRun).toMatch(/^db:shop-db +rds-db-instance +waiting +.*waiting for shop\/web: desiredCount 3/m);
    expect(dryRun).toMatch(
      /^dry run: \d+ requests reached AWS, every one a read \(Describe\/List\/Get\): nothing changed$/m,
    );
    expect(dryRun.slice(dryRun.indexOf(STATUS))).toMatch(/^Parked by nightshift: nothing$/m);
    // 2. Parked: the changes the dry run planned happen now (so they had not before), alarms silenced
    expect(parked).toMatch(/ecs-scheduler \{"action":"reconcile","planDigest":"[0-9a-f]{64}"\}$/m);
    expect(parked).toMatch(/^shop\/web +ecs-service +changed +.*desiredCount 3 → 0/m);
    expect(parked).toMatch(/^shop-batch +autoscaling-group +changed +.*min 1→0, desired 2→0, max 4→0/m);
    expect(parked).toMatch(/^db:shop-db +rds-db-instance +changed +.*then StopDBInstance$/m);
    for (const alarm of ['shop-web-5xx', 'shop-batch-cpu', 'shop-db-cpu'])
      expect(parked).toMatch(
        new RegExp(`^alarm:${alarm} +cloudwatch-alarm +changed +alarm ${alarm}: actions disabled while`, 'm'),
      );
    expect(parked).toMatch(/^Parked by nightshift \(4\):$/m);
    // 3. Tags from the database onto its snapshot, then a copy in the other region
    expect(snapshots).toMatch(
      /^snapshot:ledger-db-nightly +rds-snapshot +changed +added 2 tags from db ledger-db: cost-center, team$/m,
    );
    expect(snapshots).toMatch(
      /^snapshot:ledger-db-nightly +rds-snapshot +changed +copy ledger-db-nightly to eu-west-1 as ledger-db-nightly with its tags/m,
    );
    // 4. One rotation: launch before terminate
    expect(rotation).toMatch(
      /^ops-runners +autoscaling-group +changed +launch a replacement for i-\w+ \(\d+d \d+h old, max 14d\): desired 2 → 3/m,
    );
    expect(rotation).toMatch(
      /^ops-runners +autoscaling-group +changed +terminate i-\w+ now that its replacement is in service \(3 in service\): desired 3 → 2/m,
    );
    // 5. A running service restarted; the parked one refused, naming its parked state
    expect(alarms).toMatch(
      /^ops\/gateway +ecs-service +changed +redeploy \(UpdateService forceNewDeployment; alarm ops-gateway-5xx\)/m,
    );
    expect(alarms).toMatch(
      /^shop\/web +ecs-service +skipped +parked by nightshift \(nightshift:stopped desired=3 min=2 max=6 [^)]*\): not restarted for alarm shop-web-5xx .*nothing redeployed$/m,
    );
    expect(alarms).toContain('restart: 0 changed, 0 planned, 0 unchanged, 1 skipped, 0 failed');
    // 6. The override starts the database and re-enables its alarm; once over, the database stops again
    expect(wake).toMatch(
      /^db:shop-db +rds-db-instance +changed +override: running until \w{3} 05:30 Europe\/Berlin .* by assumed-role\/OnCall\/ops@example.com/m,
    );
    expect(wake).toMatch(
      /^alarm:shop-db-cpu +cloudwatch-alarm +changed +alarm shop-db-cpu: actions enabled/m,
    );
    expect(wake).toMatch(
      /^db:shop-db +rds-db-instance +changed +.*override by assumed-role\/OnCall\/ops@example.com ended at .*then StopDBInstance; then removes the expired nightshift:override$/m,
    );
    expect(wake).toMatch(
      /^alarm:shop-db-cpu +cloudwatch-alarm +changed +alarm shop-db-cpu: actions disabled while shop-db is parked/m,
    );
    // 7. The morning in order: the database, then the group (the services wait), then the services
    expect(morning).toMatch(
      /^db:shop-db +rds-db-instance +changed +.*StartDBInstance, then removes nightshift:stopped/m,
    );
    expect(morning).toMatch(
      /^shop\/web +ecs-service +waiting +waiting for shop-db: starting \(environment shop: databases start first\)/m,
    );
    expect(morning).toMatch(/^shop-batch +autoscaling-group +changed /m);
    expect(morning).toMatch(/^shop\/web +ecs-service +waiting +waiting for shop-batch: started by this run/m);
    expect(morning).toMatch(/^shop\/web +ecs-service +changed +.*desiredCount 0 → 3/m);
    expect(morning).toMatch(
      /^alarm:shop-web-5xx +cloudwatch-alarm +changed +alarm shop-web-5xx: actions enabled/m,
    );
    expect(morning.slice(morning.indexOf(STATUS))).toMatch(/^Parked by nightshift: nothing$/m);
    // 8. The end: checked, and said so on the last line
    expect(end).toMatch(
      /^shop, sent in order: service \w+=0, service \w+=0, stop-db, start-db, stop-db, start-db, service \w+=\d, service \w+=\d$/m,
    );
    expect(end).toMatch(/^ {2}alarm shop-db-cpu: actions +enabled +evening: enabled$/m);
    expect(end).toMatch(
      /^ {2}group ops-runners: size +min 1 desired 2 max 3 +evening: min 1 desired 2 max 3$/m,
    );
    expect(end).toMatch(/^nightshift state left \(stopped, silenced, override, rotation tags\): none$/m);
    expect(run.stdout.trimEnd().split('\n').pop()).toBe(
      'came back exactly: every desired count, scaling target, group size, database status and alarm action is as it was the evening before, and no nightshift saved state (stopped, silenced, override, rotation) is left.',
    );
  }, 180_000);

  it('`-- environment`: parks the environment at night, the database last, and wakes it in order in the morning, exactly as it was', () => {
    // Act
    const run = demo('environment');

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
  }, 180_000);

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
  }, 180_000);

  it('refuses an unknown demo, naming the ones there are', () => {
    // Act
    const run = demo('nope');

    // Assess
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('no demo "nope": npm run demo [-- night|environment|ecs]');
  });
});

describe('the end of the night demo', () => {
  it('names every fact that did not come back, and forgives only the restart record on what was restarted', () => {
    // Prepare: the evening, and a morning where a service, an alarm and a tag did not come back
    const evening = new Map([
      ['service shop/web: desired', '3'],
      ['alarm shop-db-cpu: actions', 'enabled'],
      ['group shop-batch: tags', 'nightshift:environment=shop, nightshift:schedule=office-hours'],
      ['service ops/gateway: tags', 'nightshift:restartable=true'],
    ]);
    const morning = new Map([
      ['service shop/web: desired', '0'],
      ['alarm shop-db-cpu: actions', 'disabled'],
      [
        'group shop-batch: tags',
        'nightshift:environment=shop, nightshift:schedule=office-hours, nightshift:stopped=min=1 desired=2 max=4',
      ],
      [
        'service ops/gateway: tags',
        'nightshift:last-restart=at=2026-12-02T02:30:00Z what=ecs-service via=alarm, nightshift:restartable=true',
      ],
    ]);

    // Act
    const found = differences(evening, morning);
    const exact = differences(
      evening,
      new Map([...evening, ['service ops/gateway: tags', morning.get('service ops/gateway: tags') ?? '']]),
    );

    // Assess
    expect(found).toEqual([
      'service shop/web: desired: was 3, now 0',
      'alarm shop-db-cpu: actions: was enabled, now disabled',
      'group shop-batch: tags: was nightshift:environment=shop, nightshift:schedule=office-hours, now nightshift:environment=shop, nightshift:schedule=office-hours, nightshift:stopped=min=1 desired=2 max=4',
    ]);
    expect(exact).toEqual([]);
    expect(differences(evening, new Map([...evening].slice(1)))).toEqual([
      'service shop/web: desired: was 3, now (absent)',
    ]);
  });
});
