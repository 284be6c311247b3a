import { describe, expect, it } from 'vitest';
import {
  parseRestartTag,
  planRestart,
  requestFromAction,
  requestFromAlarm,
  shellCommand,
  type RestartRequest,
} from '#functions/ssm-restart/plan.ts';
import type { InstanceState, RestartEstate, ServiceState } from '#functions/ssm-restart/inventory.ts';
import { AlarmStateChangeEvent } from '#events/aws.cloudwatch/schema.ts';
import { parseInput } from '#shared/input.ts';
import type { Lease } from '#shared/lease.ts';
import { planDigest } from '#shared/plan-digest.ts';
import { readFileSync } from 'node:fs';

// The planner reads no clock: every run here happens at this instant.
const now = new Date('2026-11-23T02:15:00Z');
const minutesAgo = (m: number, seconds = 0) =>
  new Date(now.getTime() - m * 60_000 - seconds * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
// The tag names are a public contract: spelled out here rather than imported.
const LAST = 'nightshift:last-restart';
const RESTARTABLE = { 'nightshift:restartable': 'true' };
const owner = { holder: 'ssm-restart run 2f8e (nightshift-dev-ssm-restart)', token: 'run-token' };
/** No restart records in the lease table: nothing restarted these targets through it yet. */
const opts = {
  cooldownMinutes: 15,
  maxPerHour: 3,
  now,
  records: { records: new Map() },
  owner,
  runUntil: new Date(now.getTime() + 11 * 60_000),
};

/** A running, opted-in instance whose SSM agent is online, unless `spec` says otherwise. */
const instance = (n: number, spec: Partial<InstanceState> = {}): InstanceState => {
  const id = `i-${n.toString(16).padStart(17, '0')}`;
  return {
    id,
    arn: `arn:aws:ec2:eu-central-1:123456789012:instance/${id}`,
    state: 'running',
    pingStatus: 'Online',
    ...spec,
    tags: { ...RESTARTABLE, ...spec.tags },
  };
};

const estate = (parts: Partial<RestartEstate> = {}): RestartEstate => ({
  instances: [],
  missingInstances: [],
  groups: {},
  services: [],
  missingServices: [],
  ...parts,
});

const request = (spec: Partial<RestartRequest> = {}): RestartRequest => ({
  trigger: 'alarm',
  reason: 'alarm web-1-unhealthy',
  what: { kind: 'container', name: 'web' },
  selection: { instanceIds: [], groups: [], services: [] },
  ...spec,
});

const sample = (file: string) =>
  parseInput(
    AlarmStateChangeEvent,
    JSON.parse(readFileSync(`events/aws.cloudwatch/samples/${file}`, 'utf8')) as unknown,
  );
const withDimensions = (dimensions: Record<string, string>[]) => {
  const event = sample('alarm-instance.json');
  return {
    ...event,
    detail: {
      ...event.detail,
      configuration: {
        metrics: dimensions.map((d, i) => ({ id: `m${i}`, metricStat: { metric: { dimensions: d } } })),
      },
    },
  };
};

describe('parseRestartTag', () => {
  it.each([
    ['container:web', { kind: 'container', name: 'web' }],
    ['unit:nginx.service', { kind: 'unit', name: 'nginx.service' }],
    ['unit:getty@tty1.service', { kind: 'unit', name: 'getty@tty1.service' }],
    ['container:shop_web-1.2', { kind: 'container', name: 'shop_web-1.2' }],
    ['ecs-service', { kind: 'ecs-service' }],
    [' ecs-service ', { kind: 'ecs-service' }],
  ])('reads %j', (value, what) => {
    expect(parseRestartTag(value)).toEqual({ what });
  });

  it.each([
    ['', 'tag nightshift:restart is "": expected container:<name>, unit:<name> or ecs-service'],
    ['restart', 'tag nightshift:restart is "restart": expected container:<name>, unit:<name> or ecs-service'],
    ['pod:web', 'tag nightshift:restart is "pod:web": expected container:<name>, unit:<name> or ecs-service'],
    [
      'ECS-Service',
      'tag nightshift:restart is "ECS-Service": expected container:<name>, unit:<name> or ecs-service',
    ],
    ['container:', 'tag nightshift:restart names container "": expected 1 to 128 letters'],
    ['container:web; rm -rf /', 'tag nightshift:restart names container "web; rm -rf /": expected'],
    ['container:$(reboot)', 'tag nightshift:restart names container "$(reboot)": expected'],
    ['unit:../x', 'tag nightshift:restart names unit "../x": expected'],
    ['unit:nginx service', 'tag nightshift:restart names unit "nginx service": expected'],
    ['container:-rm', 'tag nightshift:restart names container "-rm": expected'],
  ])('refuses %j, naming the tag', (value, message) => {
    const parsed = parseRestartTag(value);
    expect('error' in parsed && parsed.error).toMatch(
      new RegExp(`^${message.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`),
    );
  });

  it('refuses a 129-character name and cuts what it quotes', () => {
    const parsed = parseRestartTag(`container:${'w'.repeat(200)}`);
    expect('error' in parsed && parsed.error).toMatch(
      /^tag nightshift:restart names container "w{100}…": expected/,
    );
    expect(parseRestartTag(`container:${'w'.repeat(128)}`)).toEqual({
      what: { kind: 'container', name: 'w'.repeat(128) },
    });
  });
});

describe('shellCommand', () => {
  it('builds the command from the name alone', () => {
    expect(shellCommand({ kind: 'container', name: 'web' })).toBe('docker restart web');
    expect(shellCommand({ kind: 'unit', name: 'nginx.service' })).toBe('systemctl restart nginx.service');
  });

  it.each(['web; reboot', '$(reboot)', 'a b', '', '-h', 'x'.repeat(129)])(
    'refuses %j even when it got past every earlier check',
    (name) => {
      expect(() => shellCommand({ kind: 'container', name })).toThrow(/^refused container name/);
    },
  );
});

describe('requestFromAlarm', () => {
  it('targets the InstanceId and AutoScalingGroupName dimensions of every metric, each once', () => {
    const event = withDimensions([
      { InstanceId: 'i-0a1b2c3d4e5f60718' },
      { AutoScalingGroupName: 'web-fleet' },
      { InstanceId: 'i-0a1b2c3d4e5f60718', Port: '80' },
    ]);

    expect(requestFromAlarm(event, 'container:web')).toEqual({
      request: {
        trigger: 'alarm',
        reason: 'alarm web-1-container-unhealthy',
        what: { kind: 'container', name: 'web' },
        selection: { instanceIds: ['i-0a1b2c3d4e5f60718'], groups: ['web-fleet'], services: [] },
        // The state change, read from detail.state.timestamp (CloudWatch's `+0000` offset)
        stateChange: {
          alarm: 'arn:aws:cloudwatch:eu-central-1:123456789012:alarm:web-1-container-unhealthy',
          at: '2026-11-23T02:14:40.989Z',
        },
      },
    });
  });

  it('restarts only the instance of a CloudWatch agent metric, whose group name only says where it lives', () => {
    // Prepare: the agent's usual append_dimensions add all four to every metric it sends
    const event = sample('alarm-instance.json');
    event.detail.configuration!.metrics = [
      {
        id: 'm1',
        metricStat: {
          metric: {
            namespace: 'CWAgent',
            name: 'mem_used_percent',
            dimensions: {
              InstanceId: 'i-0a1b2c3d4e5f60718',
              AutoScalingGroupName: 'web-fleet',
              ImageId: 'ami-0123456789abcdef0',
              InstanceType: 'm6g.large',
            },
          },
        },
        returnData: true,
      },
    ];

    // Act
    const resolved = requestFromAlarm(event, 'container:web');

    // Assess: the one instance, not the InService members of web-fleet
    expect(resolved).toMatchObject({
      request: { selection: { instanceIds: ['i-0a1b2c3d4e5f60718'], groups: [], services: [] } },
    });
  });

  it('decides metric by metric: a group only from a metric about the group itself', () => {
    const event = withDimensions([
      // An agent metric of one instance of web-fleet
      { InstanceId: 'i-0a1b2c3d4e5f60718', AutoScalingGroupName: 'web-fleet', InstanceType: 'm6g.large' },
      // The agent's aggregate over api-fleet (aggregation_dimensions), or EC2's group metric
      { AutoScalingGroupName: 'api-fleet' },
      // An instance of api-fleet, named with its group
      { InstanceId: 'i-0fedcba9876543210', AutoScalingGroupName: 'api-fleet' },
    ]);

    expect(requestFromAlarm(event, 'unit:nginx')).toMatchObject({
      request: {
        selection: {
          instanceIds: ['i-0a1b2c3d4e5f60718', 'i-0fedcba9876543210'],
          groups: ['api-fleet'],
          services: [],
        },
      },
    });
  });

  it('targets only the metric a metric-math alarm returns, not the metrics that only feed it', () => {
    const event = withDimensions([]);
    event.detail.configuration.metrics = [
      {
        id: 'm1',
        metricStat: { metric: { dimensions: { InstanceId: 'i-0a1b2c3d4e5f60718' } } },
        returnData: true,
      },
      {
        id: 'm2',
        metricStat: { metric: { dimensions: { AutoScalingGroupName: 'web-fleet' } } },
        returnData: false,
      },
      {
        id: 'm3',
        metricStat: { metric: { dimensions: { InstanceId: 'i-0fedcba9876543210' } } },
        returnData: false,
      },
    ] as never;

    expect(requestFromAlarm(event, 'container:web')).toMatchObject({
      request: { selection: { instanceIds: ['i-0a1b2c3d4e5f60718'], groups: [], services: [] } },
    });
  });

  it('refuses a metric-math alarm whose instances only feed its expression, saying why', () => {
    // Prepare: web-1's latency minus the fleet's average, as CloudWatch sends it
    const event = sample('alarm-metric-math.json');

    // Act
    const resolved = requestFromAlarm(event, 'container:web');

    // Assess: neither web-1 nor the fleet is restarted
    expect(resolved).toEqual({
      refused: {
        arn: 'arn:aws:cloudwatch:eu-central-1:123456789012:alarm:web-1-slower-than-fleet',
        type: 'cloudwatch-alarm',
        hasWork: false,
        outcome: 'failed',
        detail:
          'alarm web-1-slower-than-fleet is tagged container:web but its metrics have no InstanceId or ' +
          'AutoScalingGroupName dimension (it alarms on a metric-math expression: the InstanceId and ' +
          'AutoScalingGroupName dimensions of metrics that only feed it, with returnData false, are not ' +
          'restarted); nothing restarted',
      },
    });
  });

  it('reads the single metric of a simple alarm, and every metric of an event without returnData', () => {
    const simple = sample('alarm-instance.json');
    const legacy = withDimensions([
      { InstanceId: 'i-0a1b2c3d4e5f60718' },
      { InstanceId: 'i-0fedcba9876543210' },
    ]);

    expect(requestFromAlarm(simple, 'container:web')).toMatchObject({
      request: { selection: { instanceIds: ['i-0a1b2c3d4e5f60718'] } },
    });
    expect(requestFromAlarm(legacy, 'container:web')).toMatchObject({
      request: { selection: { instanceIds: ['i-0a1b2c3d4e5f60718', 'i-0fedcba9876543210'] } },
    });
  });

  it('targets the ClusterName/ServiceName pairs for ecs-service', () => {
    const event = withDimensions([{ ClusterName: 'shop', ServiceName: 'web' }, { ClusterName: 'shop' }]);

    expect(requestFromAlarm(event, 'ecs-service')).toMatchObject({
      request: {
        what: { kind: 'ecs-service' },
        selection: { instanceIds: [], groups: [], services: [{ cluster: 'shop', service: 'web' }] },
      },
    });
  });

  it.each([
    [
      'a garbage tag',
      [{ InstanceId: 'i-0a1b2c3d4e5f60718' }],
      'restart-me',
      'alarm web-1-container-unhealthy: tag nightshift:restart is "restart-me": expected container:<name>, unit:<name> or ecs-service; nothing restarted',
    ],
    [
      'a container tag without instance dimensions',
      [{ ClusterName: 'shop', ServiceName: 'web' }],
      'container:web',
      'alarm web-1-container-unhealthy is tagged container:web but its metrics have no InstanceId or AutoScalingGroupName dimension; nothing restarted',
    ],
    [
      'ecs-service without service dimensions',
      [{ InstanceId: 'i-0a1b2c3d4e5f60718' }],
      'ecs-service',
      'alarm web-1-container-unhealthy is tagged ecs-service but its metrics have no ClusterName and ServiceName dimensions; nothing restarted',
    ],
    [
      'an InstanceId that is an EC2 filter wildcard',
      [{ InstanceId: '*' }],
      'container:web',
      'alarm web-1-container-unhealthy has InstanceId "*", which is not an instance id; nothing restarted',
    ],
    [
      'a metric-math alarm with no dimensions at all',
      [],
      'unit:nginx',
      'alarm web-1-container-unhealthy is tagged unit:nginx but its metrics have no InstanceId or AutoScalingGroupName dimension; nothing restarted',
    ],
  ])('refuses %s with a failed row on the alarm', (_, dimensions, tag, detail) => {
    expect(requestFromAlarm(withDimensions(dimensions), tag)).toEqual({
      refused: {
        arn: 'arn:aws:cloudwatch:eu-central-1:123456789012:alarm:web-1-container-unhealthy',
        type: 'cloudwatch-alarm',
        hasWork: false,
        outcome: 'failed',
        detail,
      },
    });
  });
});

describe('requestFromAction', () => {
  it('restarts a unit on instances by tags, or redeploys a service, on demand', () => {
    expect(
      requestFromAction({ action: 'restart', targets: { tags: { app: 'web' } }, unit: 'nginx.service' }),
    ).toEqual({
      trigger: 'on-demand',
      reason: 'on-demand',
      what: { kind: 'unit', name: 'nginx.service' },
      selection: { instanceIds: [], groups: [], tags: { app: 'web' }, services: [] },
    });
    expect(requestFromAction({ action: 'restart', ecsService: { cluster: 'shop', service: 'web' } })).toEqual(
      {
        trigger: 'on-demand',
        reason: 'on-demand',
        what: { kind: 'ecs-service' },
        selection: { instanceIds: [], groups: [], services: [{ cluster: 'shop', service: 'web' }] },
      },
    );
  });
});

describe('planRestart: cooldown', () => {
  const last = (at: string, what = 'container:web') => ({ [LAST]: `at=${at} what=${what} via=alarm` });

  it.each([
    ['restarted 14 min 59 s ago', 'skipped', minutesAgo(14, 59)],
    ['restarted 1 s ago', 'skipped', minutesAgo(0, 1)],
    ['restarted 5 min in the future (clock skew)', 'skipped', '2026-11-23T02:20:00Z'],
    ['restarted 5 min 1 s in the future (not a time nightshift wrote)', 'work', '2026-11-23T02:20:01Z'],
    ['restarted exactly 15 min ago', 'work', minutesAgo(15)],
    ['restarted 16 min ago', 'work', minutesAgo(16)],
  ])('an alarm restart of an instance %s: %s', (_, expected, at) => {
    const plan = planRestart(request(), estate({ instances: [instance(1, { tags: last(at) })] }), opts);

    expect(plan.instances[0]?.hasWork ? 'work' : plan.instances[0]?.outcome).toBe(expected);
    expect(plan.send?.batches ?? []).toEqual(expected === 'work' ? [[instance(1).id]] : []);
  });

  it('counts a last restart a little in the future (clock skew) as now, and says so', () => {
    const plan = planRestart(
      request(),
      estate({ instances: [instance(1, { tags: last('2026-11-23T02:18:00Z') })] }),
      opts,
    );

    expect(plan.instances[0]?.outcome).toBe('skipped');
    expect(plan.instances[0]?.detail).toBe(
      'last restart recorded at 2026-11-23T02:18:00Z, in the future (clock skew), so counted as now, ' +
        '2026-11-23T02:15:00Z (container:web via alarm); alarm restarts wait for the 15-min cooldown, which ' +
        'ends at 2026-11-23T02:30:00Z: not restarted for alarm web-1-unhealthy',
    );
  });

  it('holds off alarm restarts no longer than one cooldown after a skewed time', () => {
    const skewed = estate({ instances: [instance(1, { tags: last('2026-11-23T02:20:00Z') })] });
    const at = (iso: string) => ({ ...opts, now: new Date(iso) });

    expect(planRestart(request(), skewed, at('2026-11-23T02:19:59Z')).instances[0]?.outcome).toBe('skipped');
    expect(planRestart(request(), skewed, at('2026-11-23T02:34:59Z')).instances[0]?.outcome).toBe('skipped');
    expect(planRestart(request(), skewed, at('2026-11-23T02:35:00Z')).instances[0]?.hasWork).toBe(true);
  });

  it.each(['2026-11-23T02:20:01Z', '2027-11-23T02:15:00Z'])(
    'restarts, and replaces, a last restart further in the future than clock skew (%s)',
    (at) => {
      const plan = planRestart(request(), estate({ instances: [instance(1, { tags: last(at) })] }), opts);

      expect(plan.instances[0]?.hasWork).toBe(true);
      expect(plan.instances[0]?.detail).toBe(
        'docker restart web (alarm web-1-unhealthy); restart time recorded in tag nightshift:last-restart; its ' +
          `nightshift:last-restart tag says ${at}, more than 5 min in the future, which no restart can be: it ` +
          'holds off nothing and is replaced',
      );
    },
  );

  it('has no cooldown from a skewed time at RESTART_COOLDOWN_MINUTES 0', () => {
    const skewed = estate({ instances: [instance(1, { tags: last('2026-11-23T02:16:00Z') })] });

    expect(planRestart(request(), skewed, { ...opts, cooldownMinutes: 0 }).instances[0]?.hasWork).toBe(true);
  });

  it('says when the target was last restarted and when the cooldown ends', () => {
    const plan = planRestart(
      request(),
      estate({ instances: [instance(1, { tags: last(minutesAgo(4), 'unit:nginx.service') })] }),
      opts,
    );

    expect(plan.instances[0]?.detail).toBe(
      'last restarted 4 min ago at 2026-11-23T02:11:00Z (unit:nginx.service via alarm); alarm restarts wait for ' +
        'the 15-min cooldown, which ends at 2026-11-23T02:26:00Z: not restarted for alarm web-1-unhealthy',
    );
  });

  it('carries out an on-demand restart within the cooldown, and says so', () => {
    const plan = planRestart(
      request({ trigger: 'on-demand', reason: 'on-demand' }),
      estate({ instances: [instance(1, { tags: last(minutesAgo(2)) })] }),
      opts,
    );

    expect(plan.instances[0]).toMatchObject({ hasWork: true });
    expect(plan.instances[0]?.detail).toBe(
      'docker restart web (on-demand); restart time recorded in tag nightshift:last-restart; last restarted 2 min ' +
        'ago at 2026-11-23T02:13:00Z (container:web via alarm): an on-demand restart ignores the cooldown',
    );
    expect(plan.tagValue).toBe('at=2026-11-23T02:15:00Z what=container:web via=on-demand');
  });

  it('has no cooldown at RESTART_COOLDOWN_MINUTES 0', () => {
    const plan = planRestart(
      request(),
      estate({ instances: [instance(1, { tags: last(minutesAgo(0, 1)) })] }),
      { ...opts, cooldownMinutes: 0 },
    );

    expect(plan.instances[0]?.hasWork).toBe(true);
  });

  it('restarts, and replaces, an unreadable last-restart tag', () => {
    const plan = planRestart(
      request(),
      estate({ instances: [instance(1, { tags: { [LAST]: 'yesterday' } })] }),
      opts,
    );

    expect(plan.instances[0]?.hasWork).toBe(true);
    expect(plan.instances[0]?.detail).toMatch(
      /; its nightshift:last-restart tag is unreadable \(.*\) and is replaced$/,
    );
  });
});

describe('planRestart: instances', () => {
  it('sends to more than 50 instances in batches of 50, leaving out the ones that are not running', () => {
    const instances = Array.from({ length: 123 }, (_, n) =>
      instance(n, n % 41 === 40 ? { state: 'stopped' } : {}),
    );

    const plan = planRestart(request(), estate({ instances }), opts);

    expect(plan.send?.batches.map((b) => b.length)).toEqual([50, 50, 20]);
    expect(plan.send?.batches.flat()).toEqual(
      instances.filter((i) => i.state === 'running').map((i) => i.id),
    );
    expect(plan.send?.commands).toEqual(['docker restart web']);
    expect(plan.instances.filter((w) => !w.hasWork).map((w) => w.detail)).toEqual([
      'not running (stopped); nothing sent',
      'not running (stopped); nothing sent',
      'not running (stopped); nothing sent',
    ]);
  });

  it.each([
    [
      'without the tag',
      {},
      'not opted in: the instance has no nightshift:restartable=true tag; nothing sent',
    ],
    [
      'with the tag set to another value',
      { 'nightshift:restartable': 'True' },
      'not opted in: the instance has no nightshift:restartable=true tag (it is "True"); nothing sent',
    ],
  ])('skips an instance %s, for an alarm or on demand, and sends it nothing', (_, tags, detail) => {
    const notOptedIn = { ...instance(1), tags };

    for (const trigger of ['alarm', 'on-demand'] as const) {
      const plan = planRestart(request({ trigger }), estate({ instances: [notOptedIn, instance(2)] }), opts);

      expect(plan.instances[0]).toEqual({
        arn: notOptedIn.arn,
        type: 'ec2-instance',
        instanceId: notOptedIn.id,
        scope: `restart#${notOptedIn.arn}`,
        hasWork: false,
        outcome: 'skipped',
        detail,
      });
      expect(plan.send?.batches).toEqual([[instance(2).id]]);
    }
  });

  it.each([
    ['SSM does not list it', undefined, 'SSM DescribeInstanceInformation does not list it'],
    ['its agent lost its connection', 'ConnectionLost', 'PingStatus ConnectionLost'],
    ['its agent is inactive', 'Inactive', 'PingStatus Inactive'],
  ])(
    'skips an instance when %s, for an alarm or on demand, and sends it nothing',
    (_, pingStatus, status) => {
      const offline = { ...instance(1), pingStatus };

      for (const trigger of ['alarm', 'on-demand'] as const) {
        const plan = planRestart(request({ trigger }), estate({ instances: [offline] }), opts);

        expect(plan.instances[0]).toMatchObject({
          hasWork: false,
          outcome: 'skipped',
          detail: `not an SSM managed instance, or its agent is offline (${status}); nothing sent`,
        });
        expect(plan.send).toBeUndefined();
      }
    },
  );

  it('gives the first reason that applies: not running, not opted in, agent offline, cooldown', () => {
    const cooling = { [LAST]: `at=${minutesAgo(1)} what=container:web via=alarm` };
    const instances = [
      { ...instance(1, { state: 'stopped', pingStatus: undefined }), tags: { ...cooling } },
      { ...instance(2, { pingStatus: 'ConnectionLost' }), tags: { ...cooling } },
      instance(3, { pingStatus: 'ConnectionLost', tags: cooling }),
      instance(4, { tags: cooling }),
    ];

    const plan = planRestart(request(), estate({ instances }), opts);

    expect(plan.instances.map((w) => w.detail.split(/[;(]/)[0]?.trim())).toEqual([
      'not running',
      'not opted in: the instance has no nightshift:restartable=true tag',
      'not an SSM managed instance, or its agent is offline',
      'last restarted 1 min ago at 2026-11-23T02:14:00Z',
    ]);
    expect(plan.send).toBeUndefined();
  });

  it('names nightshift and the reason in the comment, within its 100 characters', () => {
    const plan = planRestart(
      request({ reason: `alarm ${'x'.repeat(120)}`, what: { kind: 'unit', name: 'nginx.service' } }),
      estate({ instances: [instance(1)] }),
      opts,
    );

    expect(plan.send?.comment).toHaveLength(100);
    expect(plan.send?.comment).toMatch(/^nightshift ssm-restart: alarm x+$/);
    expect(plan.send?.commands).toEqual(['systemctl restart nginx.service']);
    expect(plan.tagValue).toBe('at=2026-11-23T02:15:00Z what=unit:nginx.service via=alarm');
  });

  it('fails named instances that do not exist on demand, and skips them for an alarm', () => {
    const missing = estate({ missingInstances: ['i-0123456789abcdef0'] });

    expect(planRestart(request({ trigger: 'on-demand' }), missing, opts).instances).toEqual([
      {
        arn: 'i-0123456789abcdef0',
        type: 'ec2-instance',
        instanceId: 'i-0123456789abcdef0',
        scope: 'restart#i-0123456789abcdef0',
        hasWork: false,
        outcome: 'failed',
        detail: 'instance not found; nothing sent',
      },
    ]);
    expect(planRestart(request(), missing, opts).instances[0]?.outcome).toBe('skipped');
    expect(planRestart(request(), missing, opts).send).toBeUndefined();
  });

  it('says when a group has no InService instance, or does not exist', () => {
    const plan = planRestart(request(), estate({ groups: { 'web-fleet': [], gone: undefined } }), opts);

    expect(plan.selection).toEqual([
      {
        arn: 'autoScalingGroupName/web-fleet',
        type: 'autoscaling-group',
        hasWork: false,
        outcome: 'skipped',
        detail: 'no InService instances; nothing sent',
      },
      {
        arn: 'autoScalingGroupName/gone',
        type: 'autoscaling-group',
        hasWork: false,
        outcome: 'skipped',
        detail: 'Auto Scaling group not found; nothing sent',
      },
    ]);
  });

  it('fails an on-demand tag selection that matched no running instance', () => {
    const plan = planRestart(
      request({
        trigger: 'on-demand',
        selection: { instanceIds: [], groups: [], tags: { app: 'web', env: 'stage' }, services: [] },
      }),
      estate(),
      opts,
    );

    expect(plan.selection).toEqual([
      {
        arn: 'tags:app=web, env=stage',
        type: 'ec2-instance',
        hasWork: false,
        outcome: 'failed',
        detail: 'no running instance carries tags app=web, env=stage; nothing sent',
      },
    ]);
  });
});

describe('planRestart: ECS services', () => {
  const service = (tags: Record<string, string> = {}): ServiceState => ({
    arn: 'arn:aws:ecs:eu-central-1:123456789012:service/shop/web',
    cluster: 'shop',
    name: 'web',
    tags: { ...RESTARTABLE, ...tags },
  });
  const ecs = request({ what: { kind: 'ecs-service' }, reason: 'alarm shop-web-memory-leak' });

  it('redeploys the service, recording the time on it, and sends no command', () => {
    const plan = planRestart(ecs, estate({ services: [service()] }), opts);

    expect(plan).toMatchObject({
      selection: [],
      instances: [],
      services: [
        {
          arn: 'arn:aws:ecs:eu-central-1:123456789012:service/shop/web',
          type: 'ecs-service',
          cluster: 'shop',
          service: 'web',
          scope: 'restart#arn:aws:ecs:eu-central-1:123456789012:service/shop/web',
          hasWork: true,
          detail:
            'redeploy (UpdateService forceNewDeployment; alarm shop-web-memory-leak); restart time recorded ' +
            'in tag nightshift:last-restart',
          digestKey:
            'redeploy (UpdateService forceNewDeployment; alarm shop-web-memory-leak); never restarted; tag none',
        },
      ],
      tagValue: 'at=2026-11-23T02:15:00Z what=ecs-service via=alarm',
    });
    expect(plan.send).toBeUndefined();
    // The claim it makes: a record of this restart, holding alarm restarts off for the cooldown
    expect(plan.services[0]?.claim).toEqual({
      expected: undefined,
      next: {
        scope: 'restart#arn:aws:ecs:eu-central-1:123456789012:service/shop/web',
        holder: owner.holder,
        token: owner.token,
        acquiredAt: now,
        expiresAt: new Date('2026-11-23T02:30:00Z'),
        data: {
          what: 'ecs-service',
          via: 'alarm',
          runUntil: '2026-11-23T02:26:00Z',
          restarts: '2026-11-23T02:15:00Z',
        },
      },
    });
  });

  it('skips a service without nightshift:restartable=true, for an alarm or on demand', () => {
    for (const trigger of ['alarm', 'on-demand'] as const) {
      const plan = planRestart(
        { ...ecs, trigger },
        estate({ services: [{ ...service(), tags: { team: 'shop' } }] }),
        opts,
      );

      expect(plan.services).toEqual([
        {
          arn: 'arn:aws:ecs:eu-central-1:123456789012:service/shop/web',
          type: 'ecs-service',
          cluster: 'shop',
          service: 'web',
          scope: 'restart#arn:aws:ecs:eu-central-1:123456789012:service/shop/web',
          hasWork: false,
          outcome: 'skipped',
          detail: 'not opted in: the service has no nightshift:restartable=true tag; nothing redeployed',
        },
      ]);
    }
  });

  it('skips a service within the cooldown for an alarm, and fails a missing one on demand', () => {
    const cooling = planRestart(
      ecs,
      estate({ services: [service({ [LAST]: `at=${minutesAgo(3)} what=ecs-service via=alarm` })] }),
      opts,
    );
    const missing = planRestart(
      { ...ecs, trigger: 'on-demand' },
      estate({ missingServices: ['shop/api'] }),
      opts,
    );

    expect(cooling.services[0]).toMatchObject({ hasWork: false, outcome: 'skipped' });
    expect(cooling.services[0]?.detail).toMatch(
      /^last restarted 3 min ago .* cooldown, which ends at 2026-11-23T02:27:00Z/,
    );
    expect(missing.services).toEqual([
      {
        arn: 'shop/api',
        type: 'ecs-service',
        cluster: 'shop',
        service: 'api',
        scope: 'restart#shop/api',
        hasWork: false,
        outcome: 'failed',
        detail: 'ECS service not found (or not ACTIVE); nothing redeployed',
      },
    ]);
  });
});

describe('planRestart: the plan digest', () => {
  const target = instance(1);
  const scope = `restart#${target.arn}`;
  const onDemand = request({
    trigger: 'on-demand',
    reason: 'on-demand',
    selection: { instanceIds: [target.id], groups: [], services: [] },
  });
  const digestWith = (record: Lease) =>
    planDigest(
      planRestart(onDemand, estate({ instances: [target] }), {
        ...opts,
        records: { records: new Map([[scope, record]]) },
      }).instances,
    );
  // An alarm restart 40 minutes ago, over: the cooldown has ended.
  const restarted: Lease = {
    scope,
    holder: 'ssm-restart run 77aa (nightshift-dev-ssm-restart)',
    token: 'alarm-run',
    acquiredAt: new Date(now.getTime() - 40 * 60_000),
    expiresAt: new Date(now.getTime() - 25 * 60_000),
    version: 3,
    data: { what: 'container:web', via: 'alarm', runUntil: minutesAgo(30), restarts: minutesAgo(40) },
  };

  it('changes when the restart record was written since, even where the last restart is the same', () => {
    const confirmed = digestWith(restarted);
    // Between the dry run and the apply, the flap guard latched on this target: the record's last
    // restart is unchanged, only its version and the latch. The apply would reset a latch nobody saw.
    const latched = { ...restarted, version: 4, data: { ...restarted.data, flapped: minutesAgo(1) } };

    expect(digestWith(restarted)).toBe(confirmed);
    expect(digestWith(latched)).not.toBe(confirmed);
  });
});
