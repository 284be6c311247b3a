import { describe, expect, it } from 'vitest';
import {
  decideRestart,
  FLAP_HOLD_MS,
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
    // The latch keeps the last restart as it was, and is kept a month
    expect(decision.write).toMatchObject({
      expected: 4,
      next: {
        holder: other.holder,
        acquiredAt: at(-15),
        expiresAt: new Date(now.getTime() + FLAP_HOLD_MS),
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
    expect(work?.digestKey).toBe('docker restart web (alarm web-1-unhealthy)');
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

    expect(work).toMatchObject({ hasWork: true, digestKey: 'docker restart web (alarm web-1-unhealthy)' });
    expect(work?.claim).toBeUndefined();
    expect(work?.detail).toBe(
      'docker restart web (alarm web-1-unhealthy); restart time recorded in tag nightshift:last-restart; its ' +
        'restart record could not be read while planning (nightshift-dev-leases: ResourceNotFoundException: ' +
        'table not found)',
    );
  });
});
