import { describe, expect, it } from 'vitest';
import {
  awaitedCommand,
  decideRestart,
  LATCH_HOLD_MS,
  restartScope,
  type GuardOptions,
} from '#functions/ssm-restart/guard.ts';
import { planRestart, type RestartRequest } from '#functions/ssm-restart/plan.ts';
import type { InstanceState } from '#functions/ssm-restart/inventory.ts';
import type { Lease } from '#shared/lease.ts';

// The guard reads no clock: every decision here happens at this instant.
const now = new Date('2026-11-23T03:00:00Z');
const at = (minutes: number) => new Date(now.getTime() + minutes * 60_000);
const iso = (minutes: number) =>
  at(minutes)
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z');
const ARN = 'arn:aws:ec2:eu-central-1:123456789012:instance/i-0a1b2c3d4e5f60718';
const SCOPE = restartScope(ARN);
const me = { holder: 'ssm-restart run 2 (nightshift-dev-ssm-restart)', token: 'run-2' };
const other = { holder: 'ssm-restart run 1 (nightshift-dev-ssm-restart)', token: 'run-1' };

const options = (spec: Partial<GuardOptions> = {}): GuardOptions => ({
  trigger: 'alarm',
  reason: 'alarm web-1-unhealthy',
  what: 'container:web',
  cooldownMinutes: 15,
  maxPerHour: 3,
  now,
  owner: me,
  runUntil: at(11),
  ...spec,
});

/** A restart record written by another run `minutes` from now (negative: ago). */
const record = (minutes: number, data: Record<string, string> = {}, cooldown = 15, version = 4): Lease => ({
  scope: SCOPE,
  holder: other.holder,
  token: other.token,
  acquiredAt: at(minutes),
  expiresAt: at(minutes + cooldown),
  version,
  data: { what: 'container:web', via: 'alarm', runUntil: iso(minutes), ...data },
});

describe('the restart guard', () => {
  it('claims a target never restarted with a record that does not exist yet, and starts its history', () => {
    const decision = decideRestart(SCOPE, undefined, options());

    expect(decision).toEqual({
      kind: 'go',
      note: '',
      write: {
        expected: undefined,
        next: {
          scope: SCOPE,
          holder: me.holder,
          token: me.token,
          acquiredAt: now,
          expiresAt: at(15),
          data: { what: 'container:web', via: 'alarm', runUntil: iso(11), restarts: iso(0) },
        },
      },
    });
  });

  it('claims over the version it read, and keeps the alarm restarts of the last hour', () => {
    const decision = decideRestart(
      SCOPE,
      record(-20, { restarts: `${iso(-61)} ${iso(-40)} ${iso(-20)}` }),
      options(),
    );

    expect(decision.kind).toBe('go');
    if (decision.kind !== 'go') return;
    expect(decision.write.expected).toBe(4);
    expect(decision.write.next.data.restarts).toBe(`${iso(-40)} ${iso(-20)} ${iso(0)}`);
    expect(decision.write.previous?.acquiredAt).toEqual(at(-20));
  });

  it('holds alarm restarts off for the cooldown of the last restart, by anything', () => {
    const decision = decideRestart(SCOPE, record(-5, { via: 'on-demand' }), options());

    expect(decision).toEqual({
      kind: 'skip',
      reason:
        'last restarted 5 min ago at 2026-11-23T02:55:00Z (container:web via on-demand, by ssm-restart run 1 ' +
        '(nightshift-dev-ssm-restart)); alarm restarts wait for the 15-min cooldown, which ends at ' +
        '2026-11-23T03:10:00Z: not restarted for alarm web-1-unhealthy',
    });
    expect(decideRestart(SCOPE, record(-15), options()).kind).toBe('go');
  });

  it.each(['alarm', 'on-demand'] as const)(
    'leaves a target alone while another run restarts it (%s), whatever the cooldown',
    (trigger) => {
      const running = record(-1, { runUntil: iso(10) }, 0);

      const decision = decideRestart(SCOPE, running, options({ trigger, reason: trigger }));

      expect(decision).toEqual({
        kind: 'skip',
        reason:
          'another restart of it is in progress: container:web via alarm, by ssm-restart run 1 ' +
          '(nightshift-dev-ssm-restart), since 2026-11-23T02:59:00Z (that run ends by 2026-11-23T03:10:00Z); ' +
          `not restarted for ${trigger} — run again once it is done`,
      });
      // Its own claim is not another run's
      expect(decideRestart(SCOPE, { ...running, token: me.token }, options({ trigger })).kind).not.toBe(
        'skip',
      );
    },
  );

  it('restarts on demand within the cooldown', () => {
    expect(
      decideRestart(SCOPE, record(-2), options({ trigger: 'on-demand', reason: 'on-demand' })).kind,
    ).toBe('go');
  });

  it.each([
    [3, ['-50', '-35', '-20'], 'flap'],
    [3, ['-61', '-35', '-20'], 'go'],
    [1, ['-20'], 'flap'],
    [5, ['-50', '-40', '-30', '-20'], 'go'],
  ])('with RESTART_MAX_PER_HOUR %i and alarm restarts at %j minutes: %s', (maxPerHour, times, expected) => {
    const restarts = times.map((m) => iso(Number(m))).join(' ');

    const decision = decideRestart(SCOPE, record(-20, { restarts }), options({ maxPerHour }));

    expect(decision.kind).toBe(expected);
  });

  it('refuses the 4th alarm restart in an hour, failed, and latches the guard', () => {
    const restarts = `${iso(-45)} ${iso(-30)} ${iso(-15)}`;

    const decision = decideRestart(SCOPE, record(-15, { restarts }), options());

    expect(decision.kind).toBe('flap');
    if (decision.kind !== 'flap') return;
    expect(decision.reason).toBe(
      'flap guard: restarted 3 times by alarms in the last hour (2026-11-23T02:15:00Z, 2026-11-23T02:30:00Z, ' +
        '2026-11-23T02:45:00Z); one more would be more than RESTART_MAX_PER_HOUR (3): no automatic restarts of ' +
        'it until a person restarts it on demand; not restarted for alarm web-1-unhealthy',
    );
    // The latch keeps the last restart as it was, and does not expire on its own
    expect(decision.write).toMatchObject({
      expected: 4,
      next: {
        holder: other.holder,
        acquiredAt: at(-15),
        expiresAt: new Date(now.getTime() + LATCH_HOLD_MS),
        data: { restarts, flapped: iso(0) },
      },
    });
  });

  it('stays latched after the hour, until a restart on demand resets it', () => {
    const latched = record(-180, { restarts: `${iso(-225)} ${iso(-210)} ${iso(-195)}`, flapped: iso(-170) });

    const alarm = decideRestart(SCOPE, latched, options());
    const onDemand = decideRestart(SCOPE, latched, options({ trigger: 'on-demand', reason: 'on-demand' }));

    expect(alarm.kind).toBe('flap');
    if (alarm.kind !== 'flap') return;
    expect(alarm.reason).toMatch(
      /^flap guard: automatic restarts of it stopped at 2026-11-23T00:10:00Z, after more than 3 restarts in an hour/,
    );
    expect(alarm.write.next.data.flapped).toBe(iso(-170));
    expect(onDemand.kind).toBe('go');
    if (onDemand.kind !== 'go') return;
    expect(onDemand.note).toBe(
      '; this on-demand restart resets the flap guard (automatic restarts of it had stopped at 2026-11-23T00:10:00Z)',
    );
    expect(onDemand.write.next.data).toEqual({ what: 'container:web', via: 'on-demand', runUntil: iso(11) });
  });
});

describe('the restart guard: what a record remembers', () => {
  const ALARM = 'arn:aws:cloudwatch:eu-central-1:123456789012:alarm:web-1-unhealthy';
  const change = { alarm: ALARM, at: '2026-11-23T02:59:40.989Z' };

  it('remembers the state change that restarted it, and restarts nothing for a second delivery of it', () => {
    const first = decideRestart(SCOPE, undefined, options({ cooldownMinutes: 0, stateChange: change }));
    if (first.kind !== 'go') throw new Error('expected go');
    expect(JSON.parse(first.write.next.data.alarms ?? '[]')).toEqual([{ ...change, restarted: iso(0) }]);
    // The record as the first delivery left it: over, no cooldown (RESTART_COOLDOWN_MINUTES=0)
    const written = { ...first.write.next, version: 1, data: { ...first.write.next.data, runUntil: iso(0) } };

    const again = decideRestart(
      SCOPE,
      written,
      options({ cooldownMinutes: 0, stateChange: change, now: at(1) }),
    );
    const next = decideRestart(
      SCOPE,
      written,
      options({ cooldownMinutes: 0, stateChange: { ...change, at: '2026-11-23T03:00:50.000Z' }, now: at(1) }),
    );

    expect(again).toEqual({
      kind: 'skip',
      reason:
        'this state change of the alarm (ALARM at 2026-11-23T02:59:40.989Z) already restarted it at ' +
        "2026-11-23T03:00:00Z: a second delivery of it (the alarm's Lambda action and the EventBridge rule both " +
        'deliver it, or a retry) restarts nothing; not restarted for alarm web-1-unhealthy',
    });
    // Another state change of the same alarm is a new one
    expect(next.kind).toBe('go');
    if (next.kind !== 'go') return;
    expect(JSON.parse(next.write.next.data.alarms ?? '[]')).toHaveLength(2);
  });

  it('forgets state changes after an hour, and keeps them through an on-demand restart', () => {
    const alarms = JSON.stringify([
      { ...change, restarted: iso(-61) },
      { alarm: ALARM, at: '2026-11-23T02:40:00.000Z', restarted: iso(-20) },
    ]);
    const lease = record(-20, { alarms });

    const onDemand = decideRestart(SCOPE, lease, options({ trigger: 'on-demand', reason: 'on-demand' }));

    if (onDemand.kind !== 'go') throw new Error('expected go');
    expect(JSON.parse(onDemand.write.next.data.alarms ?? '[]')).toEqual([
      { alarm: ALARM, at: '2026-11-23T02:40:00.000Z', restarted: iso(-20) },
    ]);
    // An unreadable list remembers nothing, rather than failing the restart
    expect(
      decideRestart(SCOPE, record(-20, { alarms: '{oops' }), options({ stateChange: change })).kind,
    ).toBe('go');
  });

  it('lets a restart go ahead once the SSM command of the one in progress has ended', () => {
    const running = record(-2, { runUntil: iso(25), command: 'cmd-1' }, 0);

    const ended = decideRestart(
      SCOPE,
      running,
      options({ trigger: 'on-demand', reason: 'on-demand' }),
      'Success',
    );
    const pending = decideRestart(SCOPE, running, options(), 'Pending');
    const unknown = decideRestart(SCOPE, running, options(), undefined);

    expect(ended).toMatchObject({
      kind: 'go',
      note:
        '; the restart before it (container:web via alarm, by ssm-restart run 1 (nightshift-dev-ssm-restart), since ' +
        '2026-11-23T02:58:00Z) is over: SSM command cmd-1 ended Success',
    });
    expect(pending).toEqual({
      kind: 'skip',
      reason:
        'another restart of it is in progress: container:web via alarm, by ssm-restart run 1 ' +
        '(nightshift-dev-ssm-restart), since 2026-11-23T02:58:00Z (that run ends by 2026-11-23T03:25:00Z; its SSM ' +
        'command cmd-1 is Pending); not restarted for alarm web-1-unhealthy — run again once it is done',
    });
    expect(unknown.kind).toBe('skip');
    // An ended command does not end the cooldown: the restart happened
    expect(decideRestart(SCOPE, { ...running, expiresAt: at(13) }, options(), 'Failed').kind).toBe('skip');
  });

  it("asks SSM only about another run's restart of an instance that is still in progress with a command", () => {
    const running = record(-2, { runUntil: iso(25), command: 'cmd-1' }, 0);

    expect(awaitedCommand(running, now, me)).toEqual({
      commandId: 'cmd-1',
      instanceId: 'i-0a1b2c3d4e5f60718',
    });
    expect(awaitedCommand({ ...running, token: me.token }, now, me)).toBeUndefined();
    expect(awaitedCommand(record(-2, { runUntil: iso(-1), command: 'cmd-1' }), now, me)).toBeUndefined();
    expect(awaitedCommand(record(-2, { runUntil: iso(25) }), now, me)).toBeUndefined();
    expect(awaitedCommand(undefined, now, me)).toBeUndefined();
  });

  it('keeps a latched flap guard for years, renewed by every alarm it refuses: it does not expire on its own', () => {
    const latched = record(-180, { restarts: iso(-195), flapped: iso(-170) });

    const refused = decideRestart(SCOPE, { ...latched, expiresAt: at(60) }, options());

    expect(refused.kind).toBe('flap');
    if (refused.kind !== 'flap') return;
    expect(refused.write.next.expiresAt).toEqual(new Date(now.getTime() + LATCH_HOLD_MS));
    expect(LATCH_HOLD_MS).toBeGreaterThanOrEqual(5 * 365 * 86_400_000);
  });
});

describe('planRestart with restart records', () => {
  const instance: InstanceState = {
    id: 'i-0a1b2c3d4e5f60718',
    arn: ARN,
    state: 'running',
    pingStatus: 'Online',
    tags: { 'nightshift:restartable': 'true' },
  };
  const request: RestartRequest = {
    trigger: 'alarm',
    reason: 'alarm web-1-unhealthy',
    what: { kind: 'container', name: 'web' },
    selection: { instanceIds: [instance.id], groups: [], services: [] },
  };
  const estate = {
    instances: [instance],
    missingInstances: [],
    groups: {},
    services: [],
    missingServices: [],
  };
  const plan = (records: Map<string, Lease | undefined> | string, spec: Partial<RestartRequest> = {}) =>
    planRestart({ ...request, ...spec }, estate, {
      cooldownMinutes: 15,
      maxPerHour: 3,
      now,
      records: typeof records === 'string' ? { error: records } : { records },
      owner: me,
      runUntil: at(11),
    });

  it('plans the claim the executor writes, over the version it read', () => {
    const work = plan(new Map([[SCOPE, record(-30)]])).instances[0];

    expect(work).toMatchObject({ hasWork: true, scope: SCOPE, claim: { expected: 4 } });
    // The digest names the record's version and last restart, so a restart (or any write to the record)
    // between a dry run and its apply changes the plan
    expect(work?.digestKey).toBe(
      'docker restart web (alarm web-1-unhealthy); restart record version 4, last restart ' +
        '2026-11-23T02:30:00.000Z by run-1; tag none',
    );
  });

  it('skips a target within the cooldown of its record, even when its tag was removed', () => {
    const work = plan(new Map([[SCOPE, record(-5)]])).instances[0];

    expect(work).toMatchObject({ hasWork: false, outcome: 'skipped' });
    expect(work?.detail).toMatch(/^last restarted 5 min ago at 2026-11-23T02:55:00Z/);
  });

  it('fails a target the flap guard refuses, with the latch to write', () => {
    const restarts = `${iso(-45)} ${iso(-30)} ${iso(-15)}`;

    const work = plan(new Map([[SCOPE, record(-15, { restarts })]])).instances[0];

    expect(work).toMatchObject({ hasWork: false, outcome: 'failed', latch: { expected: 4 } });
    expect(work?.detail).toMatch(/^flap guard: restarted 3 times by alarms in the last hour/);
  });

  it('still plans a restart when the records could not be read, and says so', () => {
    const work = plan('nightshift-dev-leases: ResourceNotFoundException: table not found').instances[0];

    expect(work).toMatchObject({
      hasWork: true,
      digestKey: 'docker restart web (alarm web-1-unhealthy); restart record not read; tag none',
    });
    expect(work?.claim).toBeUndefined();
    expect(work?.detail).toBe(
      'docker restart web (alarm web-1-unhealthy); restart time recorded in tag nightshift:last-restart; its ' +
        'restart record could not be read while planning (nightshift-dev-leases: ResourceNotFoundException: ' +
        'table not found)',
    );
  });
});
