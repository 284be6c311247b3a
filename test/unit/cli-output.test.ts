/** What the CLI says about a report beyond its table, and its exit code. */
import { describe, expect, it } from 'vitest';
import { heldReason, leaseErrorReason } from '#shared/lease.ts';
import { refuseChangedPlan } from '#shared/plan-digest.ts';
import { NOT_STARTED } from '#shared/execute.ts';
import { buildReport, type ResourceResult } from '#shared/report.ts';
import { EXIT, renderReport, verdict } from '#scripts/cli/output.ts';

const row = (outcome: ResourceResult['outcome'], detail: string, name = 'web'): ResourceResult => ({
  arn: `arn:aws:ecs:eu-central-1:123456789012:service/stage/${name}`,
  type: 'ecs-service',
  outcome,
  detail,
});
const now = new Date('2026-11-23T03:00:00Z');
const held = heldReason(
  {
    scope: 'arn:aws:ecs:eu-central-1:123456789012:cluster/stage',
    holder: 'ecs-scheduler run 7c1d (local:ops@laptop)',
    token: 't',
    acquiredAt: new Date('2026-11-23T02:58:00Z'),
    expiresAt: new Date('2026-11-23T03:05:00Z'),
    version: 1,
    data: {},
  },
  now,
);

describe('the verdict on a report', () => {
  it('is 0 for a run that did its work, and for skipped rows of other kinds', () => {
    const report = buildReport('copy', false, [
      row('changed', 'copied'),
      row('skipped', 'in-flight copy limit: 20 copies already in flight', 'b'),
    ]);

    expect(verdict(report, { dryRun: false })).toEqual({ code: EXIT.ok, lines: [] });
  });

  it('is 3, not finished, for rows another run holds (undone, or skipped by functions deployed before), with what to do', () => {
    const undone = verdict(buildReport('stop', false, [row('undone', held)]), { dryRun: false });
    const skipped = verdict(buildReport('stop', false, [row('skipped', held)]), { dryRun: false });

    expect(undone.code).toBe(3);
    expect(undone.lines).toEqual([
      '1 not done: another run holds their lease (the row says who, since when, and when it expires); nothing changed there. Run the same command again once that run is done.',
    ]);
    expect(skipped).toEqual(undone);
  });

  it('is 3 for undone work and for a plan that changed since it was confirmed', () => {
    const changed = refuseChangedPlan('0'.repeat(64), [
      { arn: row('planned', '').arn, type: 'ecs-service', detail: 'desiredCount 5 → 0', hasWork: true },
    ]);

    expect(verdict(buildReport('stop', false, [row('undone', NOT_STARTED)]), { dryRun: false }).code).toBe(3);
    expect(verdict(buildReport('stop', false, changed ?? []), { dryRun: false }).code).toBe(3);
  });

  it('is 3 for work an ecs-scheduler start left for later (a stop may still be running, capacity not back), with what to do', () => {
    const stopRunning =
      'saved state from 2026-11-23T02:58:00Z is 2m old and the service is not parked yet: a stop may still be ' +
      'running on it (a stop saves its state before it parks); nothing changed — if no stop is running, run start again after 2026-11-23T03:14:00Z';
    const notBack =
      'not started: its capacity group arn:aws:autoscaling:eu-central-1:123456789012:autoScalingGroup:x:autoScalingGroupName/stage-nodes ' +
      'is not back (failed), so its tasks would have nowhere to run; nothing changed — run start again';

    const undone = verdict(
      buildReport('start', false, [row('undone', stopRunning), row('undone', notBack, 'b')]),
      {
        dryRun: false,
      },
    );
    // From an ecs-scheduler deployed before these rows became undone.
    const skipped = verdict(
      buildReport('start', false, [row('skipped', stopRunning), row('skipped', notBack, 'b')]),
      {
        dryRun: false,
      },
    );
    const dryRun = verdict(buildReport('start', true, [row('undone', stopRunning)]), { dryRun: true });

    expect(undone).toEqual({
      code: 3,
      lines: [
        '2 not done yet, for the reason each row gives (e.g. a stop may still be running on it, or its capacity is not back); ' +
          'nothing changed there and nothing was lost. Run the same command again (after the time the row names, if it names one); ' +
          'scheduled runs start with them.',
      ],
    });
    expect(skipped).toEqual(undone);
    expect(dryRun).toEqual({ code: 0, lines: [] });
  });

  it('is 2, refused, when the function’s own DRY_RUN made a change that was asked for a dry run; 0 with nothing planned', () => {
    const planned = buildReport('stop', true, [row('planned', 'desiredCount 3 → 0')]);
    const nothing = buildReport('stop', true, [row('unchanged', 'already parked')]);

    expect(verdict(planned, { dryRun: false }).code).toBe(2);
    expect(verdict(planned, { dryRun: true })).toEqual({ code: 0, lines: [] });
    expect(verdict(nothing, { dryRun: false })).toEqual({ code: 0, lines: [] });
  });

  it('is 1 when a row failed or the lease table could not be used, whatever else', () => {
    const reason = leaseErrorReason('nightshift-dev-leases', 'AccessDeniedException: no');

    expect(
      verdict(buildReport('stop', false, [row('failed', 'x'), row('undone', NOT_STARTED, 'b')]), {
        dryRun: false,
      }).code,
    ).toBe(1);
    const failed = verdict(buildReport('stop', false, [row('failed', reason)]), { dryRun: false });
    expect(failed.code).toBe(1);
    expect(failed.lines).toEqual([
      '1 not done: the lease table could not be used (the row says why); nothing changed there. Fix access to the table, then run the same command again.',
    ]);
    expect(verdict(buildReport('stop', false, [row('skipped', reason)]), { dryRun: false }).code).toBe(1);
  });
});

describe('the verdict on an on-demand restart', () => {
  const target = (outcome: ResourceResult['outcome'], detail: string, id: string): ResourceResult => ({
    arn: `arn:aws:ec2:eu-central-1:123456789012:instance/${id}`,
    type: 'ec2-instance',
    outcome,
    detail,
  });
  const offline =
    'not an SSM managed instance, or its agent is offline (PingStatus ConnectionLost); nothing sent';

  it('is 3 when nothing restarted because every target was skipped', () => {
    const result = verdict(buildReport('restart', false, [target('skipped', offline, 'i-1')]), {
      dryRun: false,
    });

    expect(result.code).toBe(3);
    expect(result.lines[0]).toMatch(/^nothing restarted: 1 target\(s\) skipped \(1 not online in SSM\)/);
  });

  it('is 0 when some restarted and others were skipped, naming those', () => {
    const result = verdict(
      buildReport('restart', false, [
        target('changed', 'systemctl restart nginx.service: Success', 'i-1'),
        target('skipped', offline, 'i-2'),
      ]),
      { dryRun: false },
    );

    expect(result).toEqual({
      code: 0,
      lines: ['1 target(s) not restarted (1 not online in SSM); the rows say why.'],
    });
  });

  it('is 0 for a dry run the person asked for, whatever it would skip', () => {
    expect(
      verdict(buildReport('restart', true, [target('skipped', offline, 'i-1')]), { dryRun: true }),
    ).toEqual({
      code: 0,
      lines: [],
    });
  });

  it('is 3 while commands were still running or not yet delivered when the function had to stop', () => {
    const report = buildReport('restart', false, [
      target(
        'changed',
        'not yet delivered to the instance when the Lambda had to stop: command c is Pending on i-1',
        'i-1',
      ),
    ]);

    expect(verdict(report, { dryRun: false }).code).toBe(3);
  });
});

describe('the report table', () => {
  it('prints the counts of rows it does not list instead of "nothing to do"', () => {
    const report = { ...buildReport('sweep', false, []), omitted: { unchanged: 40_000 } };
    report.summary.unchanged = 40_000;

    expect(renderReport('snapshot-tags', report)).toBe(
      'not listed: 40000 unchanged (counted in the summary)\n' +
        'snapshot-tags sweep: 0 changed, 0 planned, 40000 unchanged, 0 skipped, 0 failed',
    );
    expect(renderReport('snapshot-tags', buildReport('sweep', false, []))).toBe(
      'nothing to do\nsnapshot-tags sweep: 0 changed, 0 planned, 0 unchanged, 0 skipped, 0 failed',
    );
  });
});
