import { describe, expect, it } from 'vitest';
import {
  clustersInPlay,
  digestKeyOf,
  planSchedule,
  type Plan,
  type PlannedAction,
  type Step,
} from '#functions/ecs-scheduler/plan.ts';
import type { ClusterState, Estate, GroupState, ServiceState } from '#functions/ecs-scheduler/inventory.ts';
import type { ScalingLimits } from '#functions/ecs-scheduler/saved.ts';
import type { SchedulerInput } from '#events/ecs-scheduler/schema.ts';
import { DEFAULT_PROTECTED_TAGS, type TagMap, type TagRule } from '#shared/tags.ts';

// The planner reads no clock: every run here happens at this instant, and saved state it writes says so.
const now = new Date('2026-11-23T18:00:00Z');
const AT = '2026-11-23T18:00:00Z';
// State written by an earlier stop, the night before.
const EARLIER = '2026-11-22T18:00:00Z';
// The tag name is a public contract: spelled out here rather than imported.
const STOPPED = 'nightshift:stopped';

const REGION = 'eu-central-1';
const ACCOUNT = '123456789012';
const clusterArn = (cluster: string) => `arn:aws:ecs:${REGION}:${ACCOUNT}:cluster/${cluster}`;
const serviceArn = (cluster: string, service: string) =>
  `arn:aws:ecs:${REGION}:${ACCOUNT}:service/${cluster}/${service}`;
const groupArn = (group: string) =>
  `arn:aws:autoscaling:${REGION}:${ACCOUNT}:autoScalingGroup:6d2f0b7e-1c1a-4f5e-9a53-0c6c1f0e2b11:autoScalingGroupName/${group}`;

const ACTIVE_SCALING: ScalingLimits = {
  min: 2,
  max: 6,
  suspended: { in: false, out: false, scheduled: false },
};
const PARKED_SCALING: ScalingLimits = { min: 0, max: 0, suspended: { in: true, out: true, scheduled: true } };

type ServiceSpec = { name: string } & Partial<Omit<ServiceState, 'arn' | 'clusterArn' | 'clusterName'>>;

const cluster = (
  name: string,
  services: ServiceSpec[],
  tags: TagMap = {},
  standaloneTasks = 0,
): ClusterState => {
  const states: ServiceState[] = services.map((spec) => ({
    arn: serviceArn(name, spec.name),
    clusterArn: clusterArn(name),
    clusterName: name,
    status: 'ACTIVE',
    schedulingStrategy: 'REPLICA',
    desiredCount: 1,
    tags: {},
    ...spec,
    tasks: spec.tasks ?? spec.desiredCount ?? 1,
  }));
  return {
    arn: clusterArn(name),
    name,
    tags,
    capacityProviders: [`${name}-provider`],
    tasks: states.reduce((sum, s) => sum + s.tasks, standaloneTasks),
    services: states,
  };
};

const group = (name: string, size: { min: number; desired: number; max: number }, tags: TagMap = {}) => ({
  arn: groupArn(name),
  name,
  ...size,
  tags,
});

const estate = (parts: {
  clusters: ClusterState[];
  sharers?: ClusterState[];
  groups?: { group: GroupState; users: ClusterState[] }[];
  missingClusters?: string[];
}): Estate => ({
  clusters: parts.clusters,
  missingClusters: parts.missingClusters ?? [],
  sharers: parts.sharers ?? [],
  groups: (parts.groups ?? []).map((g) => g.group),
  groupUsers: Object.fromEntries((parts.groups ?? []).map((g) => [g.group.name, g.users.map((c) => c.arn)])),
});

const plan = (input: SchedulerInput, e: Estate, protectedTags: readonly TagRule[] = DEFAULT_PROTECTED_TAGS) =>
  planSchedule(input, e, { protectedTags, now });

const rows = (p: Plan) => p.phases.flat();
const row = (p: Plan, arn: string) => rows(p).find((r) => r.arn === arn);

/** The one service row a plan over a single-service cluster `stage` produces. */
const only = (action: SchedulerInput['action'], service: ServiceSpec, clusterTags: TagMap = {}) => {
  const p = plan(
    { action, clusters: ['stage'] },
    estate({ clusters: [cluster('stage', [service], clusterTags)] }),
  );
  expect(rows(p)).toHaveLength(1);
  return rows(p)[0];
};

const serviceRow = (
  service: string,
  expected: { steps: Step[]; outcome?: PlannedAction['outcome']; detail: string },
): PlannedAction => ({
  arn: serviceArn('stage', service),
  type: 'ecs-service',
  name: service,
  cluster: 'stage',
  ...expected,
});

const PARK_GROUP: Step = { op: 'set-group-size', size: { min: 0, desired: 0, max: 0 } };

interface ServiceCase {
  title: string;
  service: ServiceSpec;
  steps: Step[];
  outcome?: PlannedAction['outcome'];
  detail: string;
}

describe('planSchedule: stopping a service', () => {
  it.each<ServiceCase>([
    {
      title: 'saves desired count and scaling limits, parks the scaling target, then sets desired count 0',
      service: { name: 'web', desiredCount: 3, scaling: ACTIVE_SCALING },
      steps: [
        { op: 'save-service-state', value: `desired=3 min=2 max=6 suspended=none at=${AT}` },
        { op: 'park-scaling', resourceId: 'service/stage/web' },
        { op: 'set-desired-count', desiredCount: 0 },
        { op: 'verify-service-state', value: `desired=3 min=2 max=6 suspended=none at=${AT}` },
      ],
      detail:
        'desiredCount 3 → 0; scaling min 2→0 max 6→0, all scaling suspended; saved in tag nightshift:stopped',
    },
    {
      title: 'saves the partly suspended scaling state of a service exactly',
      service: {
        name: 'web',
        desiredCount: 3,
        scaling: { min: 1, max: 4, suspended: { in: true, out: false, scheduled: true } },
      },
      steps: [
        { op: 'save-service-state', value: `desired=3 min=1 max=4 suspended=in+scheduled at=${AT}` },
        { op: 'park-scaling', resourceId: 'service/stage/web' },
        { op: 'set-desired-count', desiredCount: 0 },
        { op: 'verify-service-state', value: `desired=3 min=1 max=4 suspended=in+scheduled at=${AT}` },
      ],
      detail:
        'desiredCount 3 → 0; scaling min 1→0 max 4→0, all scaling suspended; saved in tag nightshift:stopped',
    },
    {
      title: 'saves and zeroes a plain service without a scaling target',
      service: { name: 'worker', desiredCount: 2 },
      steps: [
        { op: 'save-service-state', value: `desired=2 at=${AT}` },
        { op: 'set-desired-count', desiredCount: 0 },
        { op: 'verify-service-state', value: `desired=2 at=${AT}` },
      ],
      detail: 'desiredCount 2 → 0; saved in tag nightshift:stopped',
    },
    {
      title: 'only saves a service already at 0, so that start leaves it at 0',
      service: { name: 'batch', desiredCount: 0 },
      steps: [
        { op: 'save-service-state', value: `desired=0 at=${AT}` },
        { op: 'verify-service-state', value: `desired=0 at=${AT}` },
      ],
      detail: 'already at desiredCount 0; saved as 0 so start leaves it at 0',
    },
    {
      title: 'leaves a service stopped by nightshift unchanged and says what start restores',
      service: {
        name: 'web',
        desiredCount: 0,
        scaling: PARKED_SCALING,
        tags: { [STOPPED]: `desired=3 min=2 max=6 suspended=none at=${EARLIER}` },
      },
      steps: [],
      outcome: 'unchanged',
      detail: `already stopped by nightshift at ${EARLIER}; start restores desiredCount 3, scaling min 2 max 6, scaling active`,
    },
    {
      title:
        'finishes an interrupted stop, saving the same values again with its own time before it parks anything',
      service: { name: 'worker', desiredCount: 2, tags: { [STOPPED]: `desired=2 at=${EARLIER}` } },
      steps: [
        { op: 'save-service-state', value: `desired=2 at=${AT}` },
        { op: 'set-desired-count', desiredCount: 0 },
        { op: 'verify-service-state', value: `desired=2 at=${AT}` },
      ],
      detail: `desiredCount 2 → 0 (finishing a stop from ${EARLIER}; saved state kept, start restores desiredCount 2)`,
    },
    {
      title: 'fails a running service whose saved state does not match it (a stale tag), and changes nothing',
      service: { name: 'worker', desiredCount: 5, tags: { [STOPPED]: `desired=2 at=${EARLIER}` } },
      steps: [],
      outcome: 'failed',
      detail:
        `saved state from ${EARLIER} (desiredCount 2) does not match the running service (desiredCount 5): ` +
        'it may be left over from a start that could not remove it; nothing changed — delete tag nightshift:stopped and run again',
    },
    {
      title:
        'adds the limits of a scaling target registered after the stop to the saved state, then parks it',
      service: {
        name: 'web',
        desiredCount: 0,
        scaling: ACTIVE_SCALING,
        tags: { [STOPPED]: `desired=3 at=${EARLIER}` },
      },
      steps: [
        { op: 'save-service-state', value: `desired=3 min=2 max=6 suspended=none at=${AT}` },
        { op: 'park-scaling', resourceId: 'service/stage/web' },
        { op: 'verify-service-state', value: `desired=3 min=2 max=6 suspended=none at=${AT}` },
      ],
      detail:
        'scaling target registered since the stop: min 2 max 6 added to the saved state; ' +
        'scaling min 2→0 max 6→0, all scaling suspended ' +
        `(finishing a stop from ${EARLIER}; saved state kept, start restores desiredCount 3, scaling min 2 max 6, scaling active)`,
    },
    {
      title: 'finishes an interrupted stop that saved scaling limits but did not park them yet',
      service: {
        name: 'web',
        desiredCount: 3,
        scaling: ACTIVE_SCALING,
        tags: { [STOPPED]: `desired=3 min=2 max=6 suspended=none at=${EARLIER}` },
      },
      steps: [
        { op: 'save-service-state', value: `desired=3 min=2 max=6 suspended=none at=${AT}` },
        { op: 'park-scaling', resourceId: 'service/stage/web' },
        { op: 'set-desired-count', desiredCount: 0 },
        { op: 'verify-service-state', value: `desired=3 min=2 max=6 suspended=none at=${AT}` },
      ],
      detail:
        'desiredCount 3 → 0; scaling min 2→0 max 6→0, all scaling suspended ' +
        `(finishing a stop from ${EARLIER}; saved state kept, start restores desiredCount 3, scaling min 2 max 6, scaling active)`,
    },
    {
      title: 'fails a service whose saved state has no valid number, and changes nothing',
      service: { name: 'worker', desiredCount: 2, tags: { [STOPPED]: 'desired=two at=yesterday' } },
      steps: [],
      outcome: 'failed',
      detail:
        'saved state in tag nightshift:stopped is unreadable (saved state has no valid desired (got two)); ' +
        'nothing changed — fix or delete the tag',
    },
    {
      title: 'fails a service whose saved tag is not name=value fields, and changes nothing',
      service: { name: 'worker', desiredCount: 2, tags: { [STOPPED]: 'yes' } },
      steps: [],
      outcome: 'failed',
      detail:
        'saved state in tag nightshift:stopped is unreadable (unreadable saved state "yes" (at "yes")); ' +
        'nothing changed — fix or delete the tag',
    },
  ])('$title', ({ service, steps, outcome, detail }) => {
    // Act
    const action = only('stop', service);

    // Assess
    expect(action).toEqual(serviceRow(service.name, { steps, outcome, detail }));
  });
});

describe('planSchedule: starting a service', () => {
  it.each<ServiceCase>([
    {
      title: 'restores scaling limits, then desired count, then clears the saved state',
      service: {
        name: 'web',
        desiredCount: 0,
        scaling: PARKED_SCALING,
        tags: { [STOPPED]: `desired=3 min=2 max=6 suspended=none at=${EARLIER}` },
      },
      steps: [
        { op: 'restore-scaling', resourceId: 'service/stage/web', limits: ACTIVE_SCALING },
        { op: 'set-desired-count', desiredCount: 3 },
        { op: 'clear-service-state', expected: `desired=3 min=2 max=6 suspended=none at=${EARLIER}` },
      ],
      detail: `desiredCount 0 → 3; scaling min 0→2 max 0→6, scaling active; saved state from ${EARLIER} removed`,
    },
    {
      title: 'restores a partly suspended scaling state as it was saved',
      service: {
        name: 'web',
        desiredCount: 0,
        scaling: PARKED_SCALING,
        tags: { [STOPPED]: `desired=3 min=1 max=4 suspended=out at=${EARLIER}` },
      },
      steps: [
        {
          op: 'restore-scaling',
          resourceId: 'service/stage/web',
          limits: { min: 1, max: 4, suspended: { in: false, out: true, scheduled: false } },
        },
        { op: 'set-desired-count', desiredCount: 3 },
        { op: 'clear-service-state', expected: `desired=3 min=1 max=4 suspended=out at=${EARLIER}` },
      ],
      detail: `desiredCount 0 → 3; scaling min 0→1 max 0→4, suspended: out; saved state from ${EARLIER} removed`,
    },
    {
      title: 'restores the desired count of a plain service and clears the saved state',
      service: { name: 'worker', desiredCount: 0, tags: { [STOPPED]: `desired=2 at=${EARLIER}` } },
      steps: [
        { op: 'set-desired-count', desiredCount: 2 },
        { op: 'clear-service-state', expected: `desired=2 at=${EARLIER}` },
      ],
      detail: `desiredCount 0 → 2; saved state from ${EARLIER} removed`,
    },
    {
      title: 'only clears the saved state of a service already back at its saved desired count',
      service: { name: 'worker', desiredCount: 2, tags: { [STOPPED]: `desired=2 at=${EARLIER}` } },
      steps: [{ op: 'clear-service-state', expected: `desired=2 at=${EARLIER}` }],
      detail: `already at desiredCount 2; saved state from ${EARLIER} removed`,
    },
    {
      title: 'keeps the saved state and changes nothing when the saved scaling target no longer exists',
      service: {
        name: 'web',
        desiredCount: 0,
        tags: { [STOPPED]: `desired=3 min=2 max=6 suspended=none at=${EARLIER}` },
      },
      steps: [],
      outcome: 'failed',
      detail:
        'saved scaling min 2 max 6 cannot be restored: the scalable target is no longer registered; nothing changed ' +
        '— register the target again (or delete tag nightshift:stopped) and run start',
    },
    {
      title: 'refuses to restore over a running service whose saved state does not match it',
      service: { name: 'worker', desiredCount: 5, tags: { [STOPPED]: `desired=2 at=${EARLIER}` } },
      steps: [],
      outcome: 'failed',
      detail:
        `saved state from ${EARLIER} (desiredCount 2) does not match the running service (desiredCount 5): ` +
        'it may be left over from a start that could not remove it; nothing changed — delete tag nightshift:stopped and run again',
    },
    {
      title: 'leaves a running service without saved state unchanged',
      service: { name: 'web', desiredCount: 3 },
      steps: [],
      outcome: 'unchanged',
      detail: 'running at desiredCount 3; no saved state',
    },
    {
      title: 'skips a service at 0 that nightshift did not stop',
      service: { name: 'batch', desiredCount: 0 },
      steps: [],
      outcome: 'skipped',
      detail: 'desiredCount 0 and no saved state: nightshift did not stop it, so there is nothing to restore',
    },
    {
      title: 'fails a service whose saved state is unreadable, and changes nothing',
      service: { name: 'worker', desiredCount: 0, tags: { [STOPPED]: 'desired=2 min=1 at=x' } },
      steps: [],
      outcome: 'failed',
      detail:
        'saved state in tag nightshift:stopped is unreadable (saved state has no valid max (got nothing)); ' +
        'nothing changed — fix or delete the tag',
    },
  ])('$title', ({ service, steps, outcome, detail }) => {
    // Act
    const action = only('start', service);

    // Assess
    expect(action).toEqual(serviceRow(service.name, { steps, outcome, detail }));
  });
});

describe('planSchedule: protection', () => {
  it.each<{ title: string; service: ServiceSpec; clusterTags?: TagMap; detail: string }>([
    {
      title: 'skips a service protected by its own tag',
      service: { name: 'api', desiredCount: 4, tags: { env: 'prod' } },
      detail: 'protected by tag env=prod on the service',
    },
    {
      title: 'skips a service in a cluster protected by its tag',
      service: { name: 'api', desiredCount: 4 },
      clusterTags: { stage: 'live' },
      detail: 'protected by tag stage=live on cluster stage',
    },
    {
      title: 'compares protection tag keys and values without regard to case',
      service: { name: 'api', desiredCount: 4, tags: { ENV: 'Production' } },
      detail: 'protected by tag ENV=Production on the service',
    },
  ])('$title on stop and on start', ({ service, clusterTags, detail }) => {
    for (const action of ['stop', 'start'] as const) {
      // Act
      const planned = only(action, service, clusterTags);

      // Assess
      expect(planned).toEqual(serviceRow(service.name, { steps: [], outcome: 'skipped', detail }));
    }
  });

  it('uses custom protection rules instead of the default ones', () => {
    // Prepare
    const stage = cluster('stage', [
      { name: 'api', desiredCount: 4, tags: { env: 'prod' } },
      { name: 'ledger', desiredCount: 2, tags: { Tier: 'Critical' } },
    ]);
    const rules = [{ key: 'tier', value: 'critical' }];

    // Act
    const p = plan({ action: 'stop', clusters: ['stage'] }, estate({ clusters: [stage] }), rules);

    // Assess: env=prod no longer protects, tier=critical does
    expect(row(p, serviceArn('stage', 'api'))).toEqual(
      serviceRow('api', {
        steps: [
          { op: 'save-service-state', value: `desired=4 at=${AT}` },
          { op: 'set-desired-count', desiredCount: 0 },
          { op: 'verify-service-state', value: `desired=4 at=${AT}` },
        ],
        detail: 'desiredCount 4 → 0; saved in tag nightshift:stopped',
      }),
    );
    expect(row(p, serviceArn('stage', 'ledger'))).toEqual(
      serviceRow('ledger', {
        steps: [],
        outcome: 'skipped',
        detail: 'protected by tag Tier=Critical on the service',
      }),
    );
  });
});

describe('planSchedule: selection', () => {
  it.each([
    {
      action: 'stop' as const,
      detail:
        'DAEMON service: desiredCount does not apply; its tasks stop when the cluster capacity is parked',
    },
    {
      action: 'start' as const,
      detail: 'DAEMON service: its tasks run again when the cluster capacity is back',
    },
  ])('skips a DAEMON service on $action', ({ action, detail }) => {
    // Act
    const planned = only(action, { name: 'agent', schedulingStrategy: 'DAEMON', desiredCount: 2 });

    // Assess
    expect(planned).toEqual(serviceRow('agent', { steps: [], outcome: 'skipped', detail }));
  });

  it('ignores services that are not ACTIVE', () => {
    // Prepare
    const stage = cluster('stage', [
      { name: 'web', desiredCount: 1 },
      { name: 'old', status: 'DRAINING', desiredCount: 2 },
      { name: 'gone', status: 'INACTIVE', desiredCount: 0 },
    ]);

    // Act
    const p = plan({ action: 'stop', clusters: ['stage'] }, estate({ clusters: [stage] }));

    // Assess
    expect(rows(p).map((r) => r.name)).toEqual(['web']);
  });

  it.each([
    { by: 'name', services: ['worker'] },
    { by: 'ARN', services: [serviceArn('stage', 'worker')] },
  ])('selects only the services named by $by', ({ services }) => {
    // Prepare
    const stage = cluster('stage', [
      { name: 'web', desiredCount: 3 },
      { name: 'worker', desiredCount: 2 },
    ]);

    // Act
    const p = plan({ action: 'stop', clusters: ['stage'], services }, estate({ clusters: [stage] }));

    // Assess
    expect(rows(p).map((r) => r.arn)).toEqual([serviceArn('stage', 'worker')]);
    expect(row(p, serviceArn('stage', 'worker'))?.steps).toEqual([
      { op: 'save-service-state', value: `desired=2 at=${AT}` },
      { op: 'set-desired-count', desiredCount: 0 },
      { op: 'verify-service-state', value: `desired=2 at=${AT}` },
    ]);
  });

  it('selects by tags with service tags merged over cluster tags', () => {
    // Prepare: `ops` overrides the cluster's team, `worker` has another app, `other` cluster is another team
    const stage = cluster(
      'stage',
      [
        { name: 'web', desiredCount: 3, tags: { app: 'web' } },
        { name: 'worker', desiredCount: 2, tags: { app: 'worker' } },
        { name: 'ops', desiredCount: 1, tags: { app: 'web', team: 'platform' } },
      ],
      { team: 'shop' },
    );
    const other = cluster('other', [{ name: 'web', desiredCount: 1, tags: { app: 'web' } }], {
      team: 'data',
    });

    // Act
    const p = plan(
      { action: 'stop', tags: { team: 'shop', app: 'web' } },
      estate({ clusters: [stage, other] }),
    );

    // Assess
    expect(rows(p).map((r) => r.arn)).toEqual([serviceArn('stage', 'web')]);
  });

  it('reports named clusters and services that do not exist as failed rows', () => {
    // Prepare
    const stage = cluster('stage', [{ name: 'web', desiredCount: 3 }]);

    // Act
    const p = plan(
      { action: 'stop', clusters: ['stage', 'stagee'], services: ['web', 'ghost'] },
      estate({ clusters: [stage], missingClusters: ['stagee'] }),
    );

    // Assess
    expect(p.phases[0]).toEqual([
      {
        arn: 'stagee',
        type: 'ecs-cluster',
        name: 'stagee',
        steps: [],
        outcome: 'failed',
        detail: 'cluster not found (or not ACTIVE); nothing done for it',
      },
      {
        arn: 'ghost',
        type: 'ecs-service',
        name: 'ghost',
        steps: [],
        outcome: 'failed',
        detail: 'service not found in cluster(s) stage',
      },
    ]);
    expect(p.phases[1]?.map((r) => r.name)).toEqual(['web']);
  });
});

describe('planSchedule: services named by ARN or by every name', () => {
  const NODES = group('stage-nodes', { min: 1, desired: 2, max: 4 });

  it('matches a service ARN in its own cluster only', () => {
    // Prepare: both clusters have a `web`
    const stage = cluster('stage', [{ name: 'web', desiredCount: 2 }]);
    const dev = cluster('dev', [{ name: 'web', desiredCount: 2 }]);

    // Act
    const p = plan(
      { action: 'stop', clusters: ['stage', 'dev'], services: [serviceArn('stage', 'web')] },
      estate({ clusters: [stage, dev] }),
    );

    // Assess
    expect(rows(p).map((r) => `${r.arn} ${r.outcome ?? 'act'}`)).toEqual([
      `${serviceArn('stage', 'web')} act`,
    ]);
  });

  it('reports a service ARN of a cluster outside the run as not found, and stops nothing else', () => {
    // Prepare
    const stage = cluster('stage', [{ name: 'web', desiredCount: 2 }]);

    // Act
    const p = plan(
      { action: 'stop', clusters: ['stage'], services: [serviceArn('prod', 'web')] },
      estate({ clusters: [stage] }),
    );

    // Assess
    expect(rows(p)).toEqual([
      {
        arn: serviceArn('prod', 'web'),
        type: 'ecs-service',
        name: 'web',
        steps: [],
        outcome: 'failed',
        detail: 'service not found in cluster(s) stage',
      },
    ]);
  });

  it('parks the capacity when every service of the cluster is named', () => {
    // Prepare: `other` shares no group and has none of the named services
    const stage = cluster('stage', [
      { name: 'web', desiredCount: 3 },
      { name: 'worker', desiredCount: 2 },
    ]);
    const other = cluster('other', []);
    const OTHER_NODES = group('other-nodes', { min: 1, desired: 1, max: 1 });

    // Act
    const p = plan(
      { action: 'stop', clusters: ['stage', 'other'], services: ['web', 'worker'] },
      estate({
        clusters: [stage, other],
        groups: [
          { group: NODES, users: [stage] },
          { group: OTHER_NODES, users: [other] },
        ],
      }),
    );

    // Assess
    expect(p.phases[2]?.map((r) => `${r.name} ${r.steps.map((s) => s.op).join('+')}`)).toEqual([
      'stage-nodes save-group-state+set-group-size+verify-group-state',
    ]);
  });

  it('skips a named service whose tags do not match, saying why', () => {
    // Prepare
    const stage = cluster('stage', [{ name: 'web', desiredCount: 3, tags: { team: 'shop' } }]);

    // Act
    const p = plan(
      { action: 'stop', clusters: ['stage'], services: ['web'], tags: { team: 'data' } },
      estate({ clusters: [stage] }),
    );

    // Assess
    expect(rows(p)).toEqual([
      serviceRow('web', {
        steps: [],
        outcome: 'skipped',
        detail: "named, but its tags (merged with cluster stage's) do not match team=data",
      }),
    ]);
  });
});

describe('planSchedule: capacity groups on stop', () => {
  const NODES = group('stage-nodes', { min: 1, desired: 2, max: 4 });
  const stop: SchedulerInput = { action: 'stop', clusters: ['stage'] };
  const groupRow = (p: Plan) => row(p, groupArn('stage-nodes'));
  const skipped = (detail: string) => ({
    arn: groupArn('stage-nodes'),
    type: 'autoscaling-group',
    name: 'stage-nodes',
    steps: [],
    outcome: 'skipped',
    detail,
  });

  it('saves and parks the group once every service of the cluster that has steps has stopped', () => {
    // Prepare: an unchanged service and a DAEMON service have no steps, so the group does not wait on them
    const stage = cluster('stage', [
      { name: 'web', desiredCount: 3, scaling: ACTIVE_SCALING },
      { name: 'worker', desiredCount: 2 },
      { name: 'batch', desiredCount: 0 },
      { name: 'cron', desiredCount: 0, tags: { [STOPPED]: `desired=1 at=${EARLIER}` } },
      { name: 'agent', desiredCount: 2, schedulingStrategy: 'DAEMON' },
    ]);

    // Act
    const p = plan(stop, estate({ clusters: [stage], groups: [{ group: NODES, users: [stage] }] }));

    // Assess
    expect(groupRow(p)).toEqual({
      arn: groupArn('stage-nodes'),
      type: 'autoscaling-group',
      name: 'stage-nodes',
      steps: [
        { op: 'save-group-state', value: `min=1 desired=2 max=4 at=${AT}` },
        PARK_GROUP,
        { op: 'verify-group-state', value: `min=1 desired=2 max=4 at=${AT}` },
      ],
      requires: [serviceArn('stage', 'web'), serviceArn('stage', 'worker'), serviceArn('stage', 'batch')],
      detail: 'min 1→0, desired 2→0, max 4→0; saved in tag nightshift:stopped',
    });
  });

  it('leaves the group running when only some services of the cluster are selected', () => {
    // Prepare
    const stage = cluster('stage', [
      { name: 'web', desiredCount: 3 },
      { name: 'worker', desiredCount: 2 },
    ]);

    // Act
    const p = plan(
      { ...stop, services: ['worker'] },
      estate({ clusters: [stage], groups: [{ group: NODES, users: [stage] }] }),
    );

    // Assess
    expect(groupRow(p)).toEqual(
      skipped('capacity left running: this run selected only some services of cluster stage'),
    );
  });

  it('leaves the group running when a protected service uses it', () => {
    // Prepare
    const stage = cluster('stage', [
      { name: 'web', desiredCount: 3 },
      { name: 'api', desiredCount: 1, tags: { env: 'prod' } },
    ]);

    // Act
    const p = plan(stop, estate({ clusters: [stage], groups: [{ group: NODES, users: [stage] }] }));

    // Assess
    expect(groupRow(p)).toEqual(skipped('protected: cluster stage has protected service api'));
  });

  it('leaves the group running when it carries a protection tag itself', () => {
    // Prepare
    const stage = cluster('stage', [{ name: 'web', desiredCount: 3 }]);
    const nodes = group('stage-nodes', { min: 1, desired: 2, max: 4 }, { Environment: 'LIVE' });

    // Act
    const p = plan(stop, estate({ clusters: [stage], groups: [{ group: nodes, users: [stage] }] }));

    // Assess
    expect(groupRow(p)).toEqual(skipped('protected by tag Environment=LIVE on the group'));
  });

  it('leaves the group running when a running service the tags did not select uses it', () => {
    // Prepare: `ops` shares the group but its cluster and services do not match the tags
    const stage = cluster('stage', [{ name: 'web', desiredCount: 3 }], { team: 'shop' });
    const ops = cluster('ops', [{ name: 'metrics', desiredCount: 1 }], { team: 'platform' });

    // Act
    const p = plan(
      { action: 'stop', tags: { team: 'shop' } },
      estate({ clusters: [stage, ops], groups: [{ group: NODES, users: [stage, ops] }] }),
    );

    // Assess
    expect(rows(p).map((r) => r.name)).toEqual(['web', 'stage-nodes']);
    expect(groupRow(p)).toEqual(
      skipped('capacity left running: service metrics in cluster ops still runs (desiredCount 1)'),
    );
  });

  it('leaves the group running when a selected service that still runs could not be planned', () => {
    // Prepare
    const stage = cluster('stage', [
      { name: 'web', desiredCount: 3 },
      { name: 'worker', desiredCount: 2, tags: { [STOPPED]: 'garbage' } },
    ]);

    // Act
    const p = plan(stop, estate({ clusters: [stage], groups: [{ group: NODES, users: [stage] }] }));

    // Assess
    expect(row(p, serviceArn('stage', 'worker'))?.outcome).toBe('failed');
    expect(groupRow(p)).toEqual(
      skipped('capacity left running: service worker in cluster stage still runs (desiredCount 2)'),
    );
  });

  it.each([
    {
      title: 'leaves the group running when a sharer cluster still runs a service on it',
      sharer: cluster('shared', [
        { name: 'idle', desiredCount: 0 },
        { name: 'reports', desiredCount: 1 },
      ]),
      expected: skipped(
        'capacity left running: service reports in cluster shared still runs (desiredCount 1)',
      ),
    },
    {
      title: 'leaves the group running when a sharer cluster is protected',
      sharer: cluster('shared', [{ name: 'reports', desiredCount: 0 }], { env: 'production' }),
      expected: skipped('protected: used by cluster shared (env=production)'),
    },
    {
      title: 'parks the group when every service of the sharer cluster is at 0',
      sharer: cluster('shared', [
        { name: 'idle', desiredCount: 0 },
        { name: 'reports', desiredCount: 0 },
      ]),
      expected: {
        arn: groupArn('stage-nodes'),
        type: 'autoscaling-group',
        name: 'stage-nodes',
        steps: [
          { op: 'save-group-state', value: `min=1 desired=2 max=4 at=${AT}` },
          PARK_GROUP,
          { op: 'verify-group-state', value: `min=1 desired=2 max=4 at=${AT}` },
        ],
        requires: [serviceArn('stage', 'web')],
        detail: 'min 1→0, desired 2→0, max 4→0; saved in tag nightshift:stopped',
      },
    },
  ])('$title', ({ sharer, expected }) => {
    // Prepare
    const stage = cluster('stage', [{ name: 'web', desiredCount: 3 }]);
    const e = estate({
      clusters: [stage],
      sharers: [sharer],
      groups: [{ group: NODES, users: [stage, sharer] }],
    });

    // Act
    const p = plan(stop, e);

    // Assess: the sharer's services are read, never planned
    expect(rows(p).map((r) => r.name)).toEqual(['web', 'stage-nodes']);
    expect(groupRow(p)).toEqual(expected);
  });

  it('leaves a group parked by nightshift unchanged and says what start restores', () => {
    // Prepare
    const stage = cluster('stage', [
      { name: 'web', desiredCount: 0, tags: { [STOPPED]: `desired=3 at=${EARLIER}` } },
    ]);
    const nodes = group(
      'stage-nodes',
      { min: 0, desired: 0, max: 0 },
      { [STOPPED]: `min=1 desired=2 max=4 at=${EARLIER}` },
    );

    // Act
    const p = plan(stop, estate({ clusters: [stage], groups: [{ group: nodes, users: [stage] }] }));

    // Assess
    expect(groupRow(p)).toEqual({
      arn: groupArn('stage-nodes'),
      type: 'autoscaling-group',
      name: 'stage-nodes',
      steps: [],
      outcome: 'unchanged',
      detail: `already parked by nightshift at ${EARLIER}; start restores min 1 desired 2 max 4`,
    });
  });

  it('finishes parking a group whose state was saved by an interrupted stop, saving the same values again first', () => {
    // Prepare
    const stage = cluster('stage', [{ name: 'web', desiredCount: 3 }]);
    const nodes = group(
      'stage-nodes',
      { min: 1, desired: 2, max: 4 },
      { [STOPPED]: `min=1 desired=2 max=4 at=${EARLIER}` },
    );

    // Act
    const p = plan(stop, estate({ clusters: [stage], groups: [{ group: nodes, users: [stage] }] }));

    // Assess
    expect(groupRow(p)).toEqual({
      arn: groupArn('stage-nodes'),
      type: 'autoscaling-group',
      name: 'stage-nodes',
      steps: [
        { op: 'save-group-state', value: `min=1 desired=2 max=4 at=${AT}` },
        PARK_GROUP,
        { op: 'verify-group-state', value: `min=1 desired=2 max=4 at=${AT}` },
      ],
      requires: [serviceArn('stage', 'web')],
      detail: `min 1→0, desired 2→0, max 4→0 (finishing a stop from ${EARLIER}; saved state kept, start restores min 1 desired 2 max 4)`,
    });
  });

  it('fails a running group whose saved state does not match it, and changes nothing', () => {
    // Prepare
    const stage = cluster('stage', [{ name: 'web', desiredCount: 3 }]);
    const nodes = group(
      'stage-nodes',
      { min: 2, desired: 5, max: 8 },
      { [STOPPED]: `min=1 desired=2 max=4 at=${EARLIER}` },
    );

    // Act
    const p = plan(stop, estate({ clusters: [stage], groups: [{ group: nodes, users: [stage] }] }));

    // Assess
    expect(groupRow(p)).toMatchObject({ steps: [], outcome: 'failed' });
    expect(groupRow(p)?.detail).toMatch(
      /^saved state from .* \(min 1 desired 2 max 4\) does not match the running group \(min 2 desired 5 max 8\)/,
    );
  });

  it('leaves the group running when the cluster runs tasks outside services', () => {
    // Prepare: two standalone tasks (RunTask or a scheduled task) besides the service's
    const stage = cluster('stage', [{ name: 'web', desiredCount: 3 }], {}, 2);

    // Act
    const p = plan(stop, estate({ clusters: [stage], groups: [{ group: NODES, users: [stage] }] }));

    // Assess
    expect(groupRow(p)).toEqual(
      skipped(
        'capacity left running: cluster stage runs 2 task(s) outside services (RunTask or scheduled tasks)',
      ),
    );
  });

  it('leaves out groups that no cluster of this run uses', () => {
    // Prepare
    const stage = cluster('stage', [{ name: 'web', desiredCount: 3 }]);
    const prod = cluster('prod', [{ name: 'api', desiredCount: 4 }]);
    const prodNodes = group('prod-nodes', { min: 2, desired: 2, max: 8 });

    // Act
    const p = plan(
      { action: 'stop', clusters: ['stage'], services: ['web'] },
      estate({ clusters: [stage, prod], groups: [{ group: prodNodes, users: [prod] }] }),
    );

    // Assess
    expect(rows(p).map((r) => r.name)).toEqual(['web']);
  });
});

describe('planSchedule: capacity groups on start', () => {
  const start: SchedulerInput = { action: 'start', clusters: ['stage'] };
  const stage = cluster('stage', [
    { name: 'web', desiredCount: 0, tags: { [STOPPED]: `desired=3 at=${EARLIER}` } },
  ]);

  it.each<{
    title: string;
    nodes: GroupState;
    steps: Step[];
    outcome?: PlannedAction['outcome'];
    detail: string;
  }>([
    {
      title: 'restores a parked group, then clears its saved state',
      nodes: group(
        'stage-nodes',
        { min: 0, desired: 0, max: 0 },
        { [STOPPED]: `min=1 desired=2 max=4 at=${EARLIER}` },
      ),
      steps: [
        { op: 'set-group-size', size: { min: 1, desired: 2, max: 4 } },
        { op: 'clear-group-state', expected: `min=1 desired=2 max=4 at=${EARLIER}` },
      ],
      detail: `min 0→1, desired 0→2, max 0→4; saved state from ${EARLIER} removed`,
    },
    {
      title: 'only clears the saved state of a group already back at its saved size',
      nodes: group(
        'stage-nodes',
        { min: 1, desired: 2, max: 4 },
        { [STOPPED]: `min=1 desired=2 max=4 at=${EARLIER}` },
      ),
      steps: [{ op: 'clear-group-state', expected: `min=1 desired=2 max=4 at=${EARLIER}` }],
      detail: `already at min 1 desired 2 max 4; saved state from ${EARLIER} removed`,
    },
    {
      title: 'leaves a group that nightshift did not park unchanged',
      nodes: group('stage-nodes', { min: 1, desired: 2, max: 4 }),
      steps: [],
      outcome: 'unchanged',
      detail: 'not parked by nightshift (min 1 desired 2 max 4)',
    },
    {
      title: 'fails a group whose saved state is unreadable, and changes nothing',
      nodes: group('stage-nodes', { min: 0, desired: 0, max: 0 }, { [STOPPED]: `min=1 max=4 at=${EARLIER}` }),
      steps: [],
      outcome: 'failed',
      detail:
        'saved state in tag nightshift:stopped is unreadable (saved state has no valid desired (got nothing)); ' +
        'nothing changed — fix or delete the tag',
    },
  ])('$title', ({ nodes, steps, outcome, detail }) => {
    // Act
    const p = plan(start, estate({ clusters: [stage], groups: [{ group: nodes, users: [stage] }] }));

    // Assess
    expect(row(p, groupArn('stage-nodes'))).toEqual({
      arn: groupArn('stage-nodes'),
      type: 'autoscaling-group',
      name: 'stage-nodes',
      steps,
      outcome,
      detail,
    });
  });
});

describe('planSchedule: phase order', () => {
  const stage = cluster('stage', [{ name: 'web', desiredCount: 3 }]);
  const e = estate({
    clusters: [stage],
    missingClusters: ['stagee'],
    groups: [{ group: group('stage-nodes', { min: 1, desired: 2, max: 4 }), users: [stage] }],
  });
  const types = (p: Plan) => p.phases.map((phase) => phase.map((r) => r.type));

  it('stops services before their capacity groups', () => {
    // Act
    const p = plan({ action: 'stop', clusters: ['stage', 'stagee'] }, e);

    // Assess
    expect(p.action).toBe('stop');
    expect(types(p)).toEqual([['ecs-cluster'], ['ecs-service'], ['autoscaling-group']]);
  });

  it('starts capacity groups before their services', () => {
    // Act
    const p = plan({ action: 'start', clusters: ['stage', 'stagee'] }, e);

    // Assess
    expect(p.action).toBe('start');
    expect(types(p)).toEqual([['ecs-cluster'], ['autoscaling-group'], ['ecs-service']]);
  });
});

describe('planSchedule: a start never removes state a stop may still be writing', () => {
  // A stop saves the state, then parks the scaling target, then sets desiredCount 0. A start that read
  // the service in between would see it running at the saved values and remove the tag.
  const minutesAgo = (m: number) => new Date(now.getTime() - m * 60_000).toISOString().replace('.000', '');

  it.each([
    {
      title: 'a service still running at the values a stop saved 5 minutes ago',
      service: {
        name: 'web',
        desiredCount: 3,
        scaling: ACTIVE_SCALING,
        tags: { [STOPPED]: `desired=3 min=2 max=6 suspended=none at=${minutesAgo(5)}` },
      },
    },
    {
      title: 'a service whose scaling a stop parked 1 minute ago but whose desiredCount it did not set yet',
      service: {
        name: 'web',
        desiredCount: 3,
        scaling: PARKED_SCALING,
        tags: { [STOPPED]: `desired=3 min=2 max=6 suspended=none at=${minutesAgo(1)}` },
      },
    },
    {
      title: 'a service at 0 whose live scaling target a stop saved but did not park yet',
      service: {
        name: 'web',
        desiredCount: 0,
        scaling: ACTIVE_SCALING,
        tags: { [STOPPED]: `desired=0 min=2 max=6 suspended=none at=${minutesAgo(15)}` },
      },
    },
  ])('leaves alone $title, as work still to do (undone)', ({ service }) => {
    // Act
    const action = only('start', service);

    // Assess
    expect(action).toMatchObject({ steps: [], outcome: 'undone' });
    expect(action?.detail).toMatch(
      /^saved state from .* is \d+m old and the service is not parked yet: a stop may still be running on it/,
    );
  });

  it('restores a fully parked service whatever the age of its tag: the stop is done with it', () => {
    // Act
    const action = only('start', {
      name: 'web',
      desiredCount: 0,
      scaling: PARKED_SCALING,
      tags: { [STOPPED]: `desired=3 min=2 max=6 suspended=none at=${minutesAgo(1)}` },
    });

    // Assess
    expect(action?.steps.map((s) => s.op)).toEqual([
      'restore-scaling',
      'set-desired-count',
      'clear-service-state',
    ]);
  });

  it('removes the tag of a running service once it is 16 minutes old, the longest a stop can run', () => {
    // Act
    const action = only('start', {
      name: 'worker',
      desiredCount: 2,
      tags: { [STOPPED]: `desired=2 at=${minutesAgo(16)}` },
    });

    // Assess
    expect(action?.steps).toEqual([
      { op: 'clear-service-state', expected: `desired=2 at=${minutesAgo(16)}` },
    ]);
  });

  it('leaves alone a young tag on a group that is not parked yet, and starts none of its services: all undone', () => {
    // Prepare
    const stage = cluster('stage', [
      { name: 'web', desiredCount: 0, tags: { [STOPPED]: `desired=3 at=${EARLIER}` } },
    ]);
    const nodes = group(
      'stage-nodes',
      { min: 1, desired: 2, max: 4 },
      { [STOPPED]: `min=1 desired=2 max=4 at=${minutesAgo(2)}` },
    );

    // Act
    const p = plan(
      { action: 'start', clusters: ['stage'] },
      estate({ clusters: [stage], groups: [{ group: nodes, users: [stage] }] }),
    );

    // Assess
    expect(row(p, groupArn('stage-nodes'))).toMatchObject({ steps: [], outcome: 'undone' });
    expect(row(p, groupArn('stage-nodes'))?.detail).toMatch(
      /^saved state from .* is 2m old and the group is not parked yet/,
    );
    expect(row(p, serviceArn('stage', 'web'))).toMatchObject({ steps: [], outcome: 'undone' });
    expect(row(p, serviceArn('stage', 'web'))?.detail).toMatch(
      /^not started: its capacity group stage-nodes is not this run's to restore \(saved state from .* is 2m old/,
    );
  });
});

describe('planSchedule: a start interrupted after its scaling restore', () => {
  // Registering min 2 moved desiredCount 0 → 2; the UpdateService to 3 then failed.
  const interrupted: ServiceSpec = {
    name: 'web',
    desiredCount: 2,
    scaling: ACTIVE_SCALING,
    tags: { [STOPPED]: `desired=3 min=2 max=6 suspended=none at=${EARLIER}` },
  };

  it('is finished by the next start', () => {
    expect(only('start', interrupted)).toEqual(
      serviceRow('web', {
        steps: [
          { op: 'set-desired-count', desiredCount: 3 },
          { op: 'clear-service-state', expected: `desired=3 min=2 max=6 suspended=none at=${EARLIER}` },
        ],
        detail:
          'desiredCount 2 → 3 (finishing a start that restored the scaling target but not desiredCount); ' +
          `saved state from ${EARLIER} removed`,
      }),
    );
  });

  it('is stopped with its tag kept as the saved state', () => {
    expect(only('stop', interrupted)).toEqual(
      serviceRow('web', {
        steps: [
          { op: 'save-service-state', value: `desired=3 min=2 max=6 suspended=none at=${AT}` },
          { op: 'park-scaling', resourceId: 'service/stage/web' },
          { op: 'set-desired-count', desiredCount: 0 },
          { op: 'verify-service-state', value: `desired=3 min=2 max=6 suspended=none at=${AT}` },
        ],
        detail:
          'desiredCount 2 → 0; scaling min 2→0 max 6→0, all scaling suspended (a start from before restored its ' +
          `scaling but not its desiredCount; saved state from ${EARLIER} kept, start restores desiredCount 3, ` +
          'scaling min 2 max 6, scaling active)',
      }),
    );
  });

  it('is still stale when desiredCount is outside the restored limits', () => {
    expect(only('start', { ...interrupted, desiredCount: 9 })).toMatchObject({
      steps: [],
      outcome: 'failed',
    });
  });

  // A start set desiredCount 3 and could not remove its tag; Application Auto Scaling then moved the
  // service to 5, inside the limits. Setting it back to 3 would scale a live service down.
  it.each(['start'] as const)(
    'is not what a %s finishes when desiredCount moved inside the limits but off the saved min: the tag is stale',
    (action) => {
      expect(only(action, { ...interrupted, desiredCount: 5 })).toEqual(
        serviceRow('web', {
          steps: [],
          outcome: 'failed',
          detail:
            `saved state from ${EARLIER} (desiredCount 3, scaling min 2 max 6, scaling active) does not match the ` +
            'running service (desiredCount 5, scaling min 2 max 6, scaling active): it may be left over from a start ' +
            'that could not remove it; nothing changed — delete tag nightshift:stopped and run again',
        }),
      );
    },
  );
});

describe('planSchedule: a stop or start cut short, then scaling moved desiredCount within the saved limits', () => {
  const SAVED = `desired=3 min=2 max=6 suspended=none at=${EARLIER}`;
  // A stop saved its tag and then could not park (RegisterScalableTarget throttled, or the deadline), or
  // a start restored everything but could not remove the tag; Application Auto Scaling then moved 3 → 4.
  const moved: ServiceSpec = {
    name: 'web',
    desiredCount: 4,
    scaling: ACTIVE_SCALING,
    tags: { [STOPPED]: SAVED },
  };

  it.each([
    { title: 'inside the limits', desiredCount: 4 },
    { title: 'at the saved max', desiredCount: 6 },
  ])('is parked by the next stop ($title), which keeps the saved values', ({ desiredCount }) => {
    expect(only('stop', { ...moved, desiredCount })).toEqual(
      serviceRow('web', {
        steps: [
          { op: 'save-service-state', value: `desired=3 min=2 max=6 suspended=none at=${AT}` },
          { op: 'park-scaling', resourceId: 'service/stage/web' },
          { op: 'set-desired-count', desiredCount: 0 },
          { op: 'verify-service-state', value: `desired=3 min=2 max=6 suspended=none at=${AT}` },
        ],
        detail:
          `desiredCount ${desiredCount} → 0; scaling min 2→0 max 6→0, all scaling suspended (a stop or start from ` +
          'before was cut short at the saved scaling limits and Application Auto Scaling moved desiredCount since; ' +
          `saved state from ${EARLIER} kept, start restores desiredCount 3, scaling min 2 max 6, scaling active)`,
      }),
    );
  });

  it.each([
    {
      title: 'the live limits differ from the saved ones',
      service: { ...moved, scaling: { ...ACTIVE_SCALING, max: 8 } },
    },
    {
      title: 'the live suspension differs from the saved one',
      service: {
        ...moved,
        scaling: { ...ACTIVE_SCALING, suspended: { in: true, out: false, scheduled: false } },
      },
    },
    { title: 'desiredCount is outside the saved limits', service: { ...moved, desiredCount: 7 } },
    {
      title: 'every kind of scaling is suspended (a person moved desiredCount, not Application Auto Scaling)',
      service: {
        ...moved,
        scaling: { ...ACTIVE_SCALING, suspended: { in: true, out: true, scheduled: true } },
        tags: { [STOPPED]: `desired=3 min=2 max=6 suspended=in+out+scheduled at=${EARLIER}` },
      },
    },
  ])('is still stale for a stop when $title', ({ service }) => {
    expect(only('stop', service)).toMatchObject({
      steps: [],
      outcome: 'failed',
      detail: expect.stringMatching(/^saved state from .* does not match the running service/),
    });
  });

  it('is still stale for a start', () => {
    expect(only('start', moved)).toMatchObject({ steps: [], outcome: 'failed' });
  });

  it('parks a group whose stop saved its tag and was cut short, after managed scaling moved desired within min and max', () => {
    // Prepare: the stop saved min 1 desired 2 max 4, then UpdateAutoScalingGroup failed; ECS managed
    // scaling then scaled the empty group in to 1
    const stage = cluster('stage', [
      { name: 'web', desiredCount: 0, scaling: PARKED_SCALING, tags: { [STOPPED]: SAVED }, tasks: 0 },
    ]);
    const nodes = group(
      'stage-nodes',
      { min: 1, desired: 1, max: 4 },
      { [STOPPED]: `min=1 desired=2 max=4 at=${EARLIER}` },
    );

    // Act
    const stopped = plan(
      { action: 'stop', clusters: ['stage'] },
      estate({ clusters: [stage], groups: [{ group: nodes, users: [stage] }] }),
    );
    const started = plan(
      { action: 'start', clusters: ['stage'] },
      estate({ clusters: [stage], groups: [{ group: nodes, users: [stage] }] }),
    );

    // Assess: the stop parks it and keeps desired 2; a start still refuses the tag
    expect(row(stopped, groupArn('stage-nodes'))).toEqual({
      arn: groupArn('stage-nodes'),
      type: 'autoscaling-group',
      name: 'stage-nodes',
      steps: [
        { op: 'save-group-state', value: `min=1 desired=2 max=4 at=${AT}` },
        PARK_GROUP,
        { op: 'verify-group-state', value: `min=1 desired=2 max=4 at=${AT}` },
      ],
      requires: [],
      detail:
        `min 1→0, desired 1→0, max 4→0 (finishing a stop from ${EARLIER} cut short before it parked the group, ` +
        'whose desired managed scaling moved since; saved state kept, start restores min 1 desired 2 max 4)',
    });
    expect(row(started, groupArn('stage-nodes'))).toMatchObject({ steps: [], outcome: 'failed' });
  });

  it.each([
    { title: 'its min differs from the saved one', size: { min: 2, desired: 2, max: 4 } },
    { title: 'its max differs from the saved one', size: { min: 1, desired: 2, max: 5 } },
  ])('still fails a group for a stop when $title', ({ size }) => {
    const stage = cluster('stage', [{ name: 'web', desiredCount: 3 }]);
    const nodes = group('stage-nodes', size, { [STOPPED]: `min=1 desired=2 max=4 at=${EARLIER}` });
    const p = plan(
      { action: 'stop', clusters: ['stage'] },
      estate({ clusters: [stage], groups: [{ group: nodes, users: [stage] }] }),
    );
    expect(row(p, groupArn('stage-nodes'))).toMatchObject({ steps: [], outcome: 'failed' });
  });
});

describe('planSchedule: two stops without a common lease', () => {
  // Stop B read web (desiredCount 3, no tag) before stop A saved its tag, and web's scaling target after
  // A parked it: the target B sees is A's parking, not web's scaling.
  const halfSeen: ServiceSpec = { name: 'web', desiredCount: 3, scaling: PARKED_SCALING };

  it('saves nothing for a running service with no tag whose scaling target is parked, and leaves it undone', () => {
    // Prepare
    const stage = cluster('stage', [halfSeen]);
    const nodes = group('stage-nodes', { min: 1, desired: 2, max: 4 });

    // Act
    const p = plan(
      { action: 'stop', clusters: ['stage'] },
      estate({ clusters: [stage], groups: [{ group: nodes, users: [stage] }] }),
    );

    // Assess: nothing saved or changed for web, and its capacity stays up
    expect(row(p, serviceArn('stage', 'web'))).toEqual(
      serviceRow('web', {
        steps: [],
        outcome: 'undone',
        detail:
          'desiredCount 3 with its scaling target parked (min 0 max 0, all scaling suspended) and no saved state: ' +
          'another stop may be parking it; nothing saved or changed — the next run finishes. If this persists, no ' +
          'stop is: register the target with its real limits (or tag nightshift:stopped) and run stop again',
      }),
    );
    expect(row(p, groupArn('stage-nodes'))).toMatchObject({
      steps: [],
      outcome: 'skipped',
      detail: 'capacity left running: service web in cluster stage still runs (desiredCount 3)',
    });
  });

  it('still saves desiredCount 0 for a parked service with no tag (start leaves it at 0)', () => {
    expect(only('stop', { ...halfSeen, desiredCount: 0 })).toMatchObject({
      steps: [
        { op: 'save-service-state', value: `desired=0 min=0 max=0 suspended=in+out+scheduled at=${AT}` },
        { op: 'verify-service-state', value: `desired=0 min=0 max=0 suspended=in+out+scheduled at=${AT}` },
      ],
    });
  });
});

describe('planSchedule: groups with a rotation in flight', () => {
  it('stops the services and leaves the group until the rotation is finished or rolled back', () => {
    // Prepare
    const stage = cluster('stage', [{ name: 'web', desiredCount: 3 }]);
    const nodes = group(
      'stage-nodes',
      { min: 1, desired: 3, max: 4 },
      { 'nightshift:rotation': 'desired=2 phase=launching' },
    );

    // Act
    const p = plan(
      { action: 'stop', clusters: ['stage'] },
      estate({ clusters: [stage], groups: [{ group: nodes, users: [stage] }] }),
    );

    // Assess
    expect(row(p, serviceArn('stage', 'web'))?.steps).toHaveLength(3);
    expect(row(p, groupArn('stage-nodes'))).toMatchObject({
      steps: [],
      outcome: 'skipped',
      detail:
        'rotation in flight (tag nightshift:rotation=desired=2 phase=launching): the group is parked by the next ' +
        'stop after instance-rotation finishes or rolls it back; its services stop now',
    });
  });
});

describe('planSchedule: scopes another run holds', () => {
  const held = (name: string, arn: string, outcome: 'undone' | 'failed' = 'undone') => ({
    arn,
    name,
    reason:
      outcome === 'undone'
        ? `another run holds the lease on it: x (${name})`
        : 'could not take a lease in nightshift-dev-leases (AccessDeniedException: no)',
    outcome,
  });

  it('reports a held cluster and a held group as undone with the holder; a stop still stops the services', () => {
    // Prepare
    const stage = cluster('stage', [{ name: 'web', desiredCount: 3 }]);
    const e: Estate = {
      ...estate({ clusters: [stage] }),
      groupUsers: { 'stage-nodes': [stage.arn] },
      heldGroups: [held('stage-nodes', groupArn('stage-nodes'))],
      heldClusters: [held('ops', clusterArn('ops'))],
    };

    // Act
    const p = plan({ action: 'stop', tags: { team: 'shop' }, clusters: ['stage', 'ops'] }, e);

    // Assess
    expect(p.phases.map((phase) => phase.map((r) => `${r.name} ${r.outcome ?? 'planned'}`))).toEqual([
      ['ops undone'],
      [],
      [],
    ]);
    const whole = plan({ action: 'stop', clusters: ['stage', 'ops'] }, e);
    expect(whole.phases.map((phase) => phase.map((r) => `${r.name} ${r.outcome ?? 'planned'}`))).toEqual([
      ['ops undone'],
      ['web planned'],
      ['stage-nodes undone'],
    ]);
    expect(row(whole, groupArn('stage-nodes'))?.detail).toBe(
      'another run holds the lease on it: x (stage-nodes)',
    );
  });

  it('starts no service with work whose group is held, and makes each other one wait for its group', () => {
    // Prepare
    const parked = { desiredCount: 0, tags: { [STOPPED]: `desired=2 at=${EARLIER}` } };
    const stage = cluster('stage', [
      { name: 'web', ...parked },
      { name: 'api', desiredCount: 1 },
    ]);
    const ops = cluster('ops', [{ name: 'cron', ...parked }]);
    const opsNodes = group(
      'ops-nodes',
      { min: 0, desired: 0, max: 0 },
      { [STOPPED]: `min=1 desired=1 max=2 at=${EARLIER}` },
    );
    const e: Estate = {
      ...estate({ clusters: [stage, ops], groups: [{ group: opsNodes, users: [ops] }] }),
      groupUsers: { 'stage-nodes': [stage.arn], 'ops-nodes': [ops.arn] },
      heldGroups: [held('stage-nodes', groupArn('stage-nodes'))],
    };

    // Act
    const p = plan({ action: 'start', clusters: ['stage', 'ops'] }, e);

    // Assess
    expect(row(p, serviceArn('stage', 'web'))).toMatchObject({
      steps: [],
      outcome: 'undone',
      detail:
        "not started: its capacity group stage-nodes is not this run's to restore (another run holds the lease on it: x (stage-nodes))",
    });
    expect(row(p, serviceArn('stage', 'api'))).toMatchObject({ outcome: 'unchanged' });
    expect(row(p, serviceArn('ops', 'cron'))?.requires).toEqual([groupArn('ops-nodes')]);
  });

  it('fails the rows of a group whose lease could not be taken (lease table unusable), and its services with it', () => {
    // Prepare
    const stage = cluster('stage', [
      { name: 'web', desiredCount: 0, tags: { [STOPPED]: `desired=2 at=${EARLIER}` } },
    ]);
    const e: Estate = {
      ...estate({ clusters: [stage] }),
      groupUsers: { 'stage-nodes': [stage.arn] },
      heldGroups: [held('stage-nodes', groupArn('stage-nodes'), 'failed')],
      heldClusters: [held('ops', clusterArn('ops'), 'failed')],
    };

    // Act
    const p = plan({ action: 'start', clusters: ['stage', 'ops'] }, e);

    // Assess
    expect(rows(p).map((r) => `${r.name} ${r.outcome ?? 'planned'}`)).toEqual([
      'ops failed',
      'stage-nodes failed',
      'web failed',
    ]);
    expect(row(p, serviceArn('stage', 'web'))?.detail).toBe(
      "not started: its capacity group stage-nodes is not this run's to restore (could not take a lease in " +
        'nightshift-dev-leases (AccessDeniedException: no))',
    );
  });
});

describe('clustersInPlay', () => {
  it('takes the clusters the selection touches and those holding a named service, and no other', () => {
    // Prepare
    const shop = cluster('shop', [{ name: 'web', desiredCount: 1, tags: { team: 'shop' } }]);
    const named = cluster('named', [{ name: 'api', desiredCount: 1, tags: { team: 'data' } }]);
    const other = cluster('other', [{ name: 'db', desiredCount: 1 }]);

    // Act
    const inPlay = clustersInPlay({ action: 'stop', tags: { team: 'shop' }, services: ['web', 'api'] }, [
      shop,
      named,
      other,
    ]);

    // Assess
    expect([...inPlay].sort()).toEqual([named.arn, shop.arn].sort());
  });
});

describe('digestKeyOf', () => {
  it('describes the steps without the time saved state is stamped with', () => {
    const at = (time: string): PlannedAction =>
      serviceRow('worker', {
        steps: [
          { op: 'save-service-state', value: `desired=2 at=${time}` },
          { op: 'set-desired-count', desiredCount: 0 },
        ],
        detail: 'd',
      });

    expect(digestKeyOf(at('2026-11-23T18:00:00Z'))).toBe(digestKeyOf(at('2026-11-23T18:04:00Z')));
    expect(digestKeyOf(at('2026-11-23T18:00:00Z'))).not.toBe(
      digestKeyOf({ ...at('2026-11-23T18:00:00Z'), steps: [{ op: 'set-desired-count', desiredCount: 0 }] }),
    );
  });
});
