import { chunk } from '#shared/concurrency.ts';
import type { PlannedWork } from '#shared/execute.ts';
import { errorMessage } from '#shared/errors.ts';
import type { TagMap } from '#shared/tags.ts';
import {
  alarmDimensions,
  inputOnlyDimensions,
  stateChangedAt,
  type AlarmStateChangeEvent,
} from '#events/aws.cloudwatch/schema.ts';
import {
  INSTANCE_ID,
  RESTART_NAME,
  RESTART_NAME_MESSAGE,
  type RestartAction,
} from '#events/ssm-restart/schema.ts';
import type { Lease, LeaseOwner } from '#shared/lease.ts';
import {
  parkDecision,
  SCHEDULE_TAG,
  wakeHint,
  type BundledSchedules,
  type ParkDecision,
} from '#shared/parked.ts';
import { decodeLastRestart, encodeLastRestart, LAST_RESTART_TAG, stamp, type Trigger } from './cooldown.ts';
import {
  decideRestart,
  lastRestartKey,
  restartScope,
  type GuardOptions,
  type GuardWrite,
  type StateChange,
} from './guard.ts';
import type { InstanceState, RestartEstate, Selection, ServiceState } from './inventory.ts';

/** The alarm tag that says what to restart. Public contract. */
export const RESTART_TAG = 'nightshift:restart';

/**
 * The alarm tag that names the one stage that restarts for it (`nightshift:stage=prod`). Every stage
 * deployed in an account sees every alarm of the account, and each claims targets in its own lease
 * table: with more than one stage, every restart alarm must carry it. Public contract.
 */
export const STAGE_TAG = 'nightshift:stage';

/**
 * The tag instances and ECS services must carry, with value `true`, to be restarted: the planner skips
 * every other target, and the role may send commands to, redeploy and tag no other (functions/ssm-restart/permissions.ts).
 * Public contract; fixed because IAM condition keys cannot be parameters.
 */
export const RESTARTABLE_TAG = 'nightshift:restartable';

/** The only SSM PingStatus whose agent takes commands now (others: ConnectionLost, Inactive). */
const ONLINE = 'Online';

/** SSM SendCommand takes at most 50 instance ids a call. */
export const SEND_BATCH = 50;

/** SendCommand's Comment is at most 100 characters. */
const COMMENT_LENGTH = 100;

export type RestartWhat =
  { kind: 'container'; name: string } | { kind: 'unit'; name: string } | { kind: 'ecs-service' };

export interface RestartRequest {
  trigger: Trigger;
  /** Why, for the SendCommand comment and the report: `alarm web-unhealthy` or `on-demand`. */
  reason: string;
  what: RestartWhat;
  selection: Selection;
  /** The alarm state change behind an alarm restart: a second delivery of it restarts nothing. */
  stateChange?: StateChange;
}

/** What the restart guard needs of a target row (guard.ts). */
interface GuardedWork extends PlannedWork {
  /** Its restart record in the lease table: `restart#<arn>`. */
  scope: string;
  /** Work: the claim to write, decided from the record read while planning (absent: read it again). */
  claim?: GuardWrite;
  /** A row the flap guard refused: the write that latches (or renews) the guard. */
  latch?: GuardWrite;
}

export interface InstanceWork extends GuardedWork {
  type: 'ec2-instance';
  instanceId: string;
}

export interface ServiceWork extends GuardedWork {
  type: 'ecs-service';
  cluster: string;
  service: string;
}

export interface SendCommandPlan {
  /** `docker restart web` or `systemctl restart nginx.service`, built from a validated name only. */
  commands: string[];
  comment: string;
  /**
   * Instance ids with work, at most 50 a send, in the planned order (the executor sends those the
   * previous run left undone first).
   */
  batches: string[][];
}

export interface RestartPlan {
  /** Rows about the selection itself: a group with no instances, tags that matched nothing. */
  selection: PlannedWork[];
  instances: InstanceWork[];
  services: ServiceWork[];
  /** Set when instances have work. */
  send?: SendCommandPlan;
  /** The value of the last-restart tag written on each target before its restart. */
  tagValue: string;
  /** How the executor decides again when another run wrote a target's restart record first. */
  guard: GuardOptions;
}

/**
 * The restart records of the targets, read from the lease table by scope (undefined: none), or why
 * they could not be read. A dry run shows its plan either way; a real run changes nothing it cannot claim.
 */
export type RestartRecords =
  | {
      records: ReadonlyMap<string, Lease | undefined>;
      /**
       * By scope: the status of the SSM command (GetCommandInvocation) of another run's restart still in
       * progress by its record; a restart whose command ended is over, whatever its record says.
       */
      commands?: ReadonlyMap<string, string>;
    }
  | { error: string };

export interface PlanOptions {
  cooldownMinutes: number;
  /** RESTART_MAX_PER_HOUR. */
  maxPerHour: number;
  now: Date;
  records: RestartRecords;
  /** This run, and when it ends at the latest: what a claim records. */
  owner: LeaseOwner;
  runUntil: Date;
  /**
   * The schedules bundled into the function: a target whose schedule wants it stopped now is not
   * restarted (shared/parked.ts). Undefined: schedules are not checked (parked targets still are held).
   */
  schedules?: BundledSchedules;
}

/** The tag value, or the `container:`/`unit:` prefix, as users write it. */
export const whatText = (what: RestartWhat): string =>
  what.kind === 'ecs-service' ? 'ecs-service' : `${what.kind}:${what.name}`;

/**
 * The shell command for a container or unit. The name is checked again here, whatever checked it
 * before: this is the only place text reaches a shell, and it is never quoted or escaped, only refused.
 */
export const shellCommand = (what: Exclude<RestartWhat, { kind: 'ecs-service' }>): string => {
  if (!RESTART_NAME.test(what.name)) throw new Error(`refused ${what.kind} name: ${RESTART_NAME_MESSAGE}`);
  return what.kind === 'container' ? `docker restart ${what.name}` : `systemctl restart ${what.name}`;
};

const quote = (text: string, max = 100) =>
  JSON.stringify(text.length > max ? `${text.slice(0, max)}…` : text);

/** Parses the alarm's `nightshift:restart` tag: `container:<name>`, `unit:<name>` or `ecs-service`. */
export const parseRestartTag = (value: string): { what: RestartWhat } | { error: string } => {
  const text = value.trim();
  if (text === 'ecs-service') return { what: { kind: 'ecs-service' } };
  const match = text.match(/^(container|unit):(.*)$/);
  if (!match) {
    return {
      error: `tag ${RESTART_TAG} is ${quote(value)}: expected container:<name>, unit:<name> or ecs-service`,
    };
  }
  const kind = match[1] as 'container' | 'unit';
  const name = match[2] ?? '';
  if (!RESTART_NAME.test(name)) {
    return { error: `tag ${RESTART_TAG} names ${kind} ${quote(name)}: ${RESTART_NAME_MESSAGE}` };
  }
  return { what: { kind, name } };
};

const ALARM_TYPE = 'cloudwatch-alarm';
const CLUSTER_OR_SERVICE = /^[A-Za-z0-9_-]{1,255}$/;

/** The distinct values of one dimension across the alarm's metrics. */
const valuesOf = (dimensions: Record<string, string>[], key: string): string[] => [
  ...new Set(dimensions.flatMap((d) => (d[key] === undefined ? [] : [d[key]]))),
];

export type AlarmResolution = { request: RestartRequest } | { refused: PlannedWork };

/**
 * What an alarm in ALARM with a `nightshift:restart` tag asks for: the targets come from its metric
 * dimensions. A tag or dimensions nobody can act on is refused with a failed row on the alarm, before
 * any mutating call. Dimension values are checked too: EC2 filters read `*` as a wildcard.
 */
export const requestFromAlarm = (
  event: AlarmStateChangeEvent,
  tagValue: string,
  region?: string,
): AlarmResolution => {
  const arn = event.resources[0] ?? '';
  const name = event.detail.alarmName;
  const refuse = (detail: string): AlarmResolution => ({
    refused: {
      arn,
      type: ALARM_TYPE,
      hasWork: false,
      outcome: 'failed',
      detail: `${detail}; nothing restarted`,
    },
  });
  const parsed = parseRestartTag(tagValue);
  if ('error' in parsed) return refuse(`alarm ${name}: ${parsed.error}`);
  // The dimensions name resources in the alarm's own region, which this function's clients do not reach.
  const alarmRegion = arn.split(':')[3];
  if (region !== undefined && alarmRegion !== region) {
    return refuse(`alarm ${name} is in region ${alarmRegion}; this function restarts in ${region} only`);
  }
  const dimensions = alarmDimensions(event);
  // Metric math: the metrics that only feed the expression name inputs, never what to restart.
  const inputs = inputOnlyDimensions(event);
  const mathNote = (keys: string[]) =>
    inputs.some((d) => keys.some((k) => d[k] !== undefined))
      ? ` (it alarms on a metric-math expression: the ${keys.join(' and ')} dimensions of metrics that ` +
        'only feed it, with returnData false, are not restarted)'
      : '';
  const changedAt = stateChangedAt(event);
  const base = {
    trigger: 'alarm' as const,
    reason: `alarm ${name}`,
    what: parsed.what,
    ...(changedAt && { stateChange: { alarm: arn, at: changedAt.toISOString() } }),
  };
  if (parsed.what.kind === 'ecs-service') {
    const pairs = dimensions.filter((d) => d.ClusterName !== undefined && d.ServiceName !== undefined);
    if (pairs.length === 0) {
      return refuse(
        `alarm ${name} is tagged ecs-service but its metrics have no ClusterName and ServiceName dimensions` +
          mathNote(['ClusterName', 'ServiceName']),
      );
    }
    const bad = pairs.find(
      (d) => !CLUSTER_OR_SERVICE.test(d.ClusterName ?? '') || !CLUSTER_OR_SERVICE.test(d.ServiceName ?? ''),
    );
    if (bad)
      return refuse(
        `alarm ${name} names ECS service ${quote(`${bad.ClusterName}/${bad.ServiceName}`)}, which is not a valid name`,
      );
    const services = [
      ...new Map(
        pairs.map((d) => [
          `${d.ClusterName}/${d.ServiceName}`,
          { cluster: d.ClusterName as string, service: d.ServiceName as string },
        ]),
      ).values(),
    ];
    return { request: { ...base, selection: { instanceIds: [], groups: [], services } } };
  }
  // Decided metric by metric. The CloudWatch agent's usual config (append_dimensions) adds InstanceId,
  // AutoScalingGroupName, ImageId and InstanceType to every metric it sends: such a metric is about its
  // one instance, and its group name only says where that instance lives. Only a metric about the group
  // itself (AutoScalingGroupName and no InstanceId: EC2's group metrics, the agent's
  // aggregation_dimensions) restarts the group's InService instances.
  const instanceIds = valuesOf(dimensions, 'InstanceId');
  const groups = valuesOf(
    dimensions.filter((d) => d.InstanceId === undefined),
    'AutoScalingGroupName',
  );
  if (instanceIds.length === 0 && groups.length === 0) {
    return refuse(
      `alarm ${name} is tagged ${whatText(parsed.what)} but its metrics have no InstanceId or AutoScalingGroupName dimension` +
        mathNote(['InstanceId', 'AutoScalingGroupName']),
    );
  }
  const badId = instanceIds.find((id) => !INSTANCE_ID.test(id));
  if (badId) return refuse(`alarm ${name} has InstanceId ${quote(badId)}, which is not an instance id`);
  return { request: { ...base, selection: { instanceIds, groups, services: [] } } };
};

/** An on-demand restart, already validated by its schema. */
export const requestFromAction = (action: RestartAction): RestartRequest => {
  const base = { trigger: 'on-demand' as const, reason: 'on-demand' };
  if (action.ecsService) {
    return {
      ...base,
      what: { kind: 'ecs-service' },
      selection: { instanceIds: [], groups: [], services: [{ ...action.ecsService }] },
    };
  }
  const what: RestartWhat =
    action.container !== undefined
      ? { kind: 'container', name: action.container }
      : { kind: 'unit', name: action.unit ?? '' };
  return {
    ...base,
    what,
    selection: {
      instanceIds: action.targets?.instanceIds ?? [],
      groups: [],
      ...(action.targets?.tags && { tags: action.targets.tags }),
      services: [],
    },
  };
};

const MINUTE_MS = 60_000;
/** Clock skew between writers of the tag: AWS itself accepts requests signed up to 5 minutes off. */
export const FUTURE_SKEW_MINUTES = 5;

/**
 * Why an alarm must not restart this target now, or undefined. Every restart of the target counts,
 * whatever it restarted: a flapping alarm, or two alarms on one instance, must not cause a restart storm.
 * A restart time a little in the future (clock skew, up to FUTURE_SKEW_MINUTES) counts as now, so it
 * holds off alarm restarts no longer than one cooldown after the time it names. A time further ahead is
 * no restart nightshift wrote (a tag set by hand, in local time or the wrong year): capped at now anew on
 * every run, it would hold them off until the day it names, so it holds off nothing and is replaced,
 * like an unreadable one.
 */
const cooldownReason = (tags: TagMap, request: RestartRequest, opts: PlanOptions) => {
  const text = tags[LAST_RESTART_TAG];
  if (text === undefined) return { note: '' };
  let last;
  try {
    last = decodeLastRestart(text);
  } catch (error) {
    return { note: `; its ${LAST_RESTART_TAG} tag is unreadable (${errorMessage(error)}) and is replaced` };
  }
  const ahead = last.at.getTime() - opts.now.getTime();
  if (ahead > FUTURE_SKEW_MINUTES * MINUTE_MS) {
    return {
      note:
        `; its ${LAST_RESTART_TAG} tag says ${stamp(last.at)}, more than ${FUTURE_SKEW_MINUTES} min in the ` +
        'future, which no restart can be: it holds off nothing and is replaced',
    };
  }
  const future = ahead > 0;
  const at = future ? opts.now : last.at;
  const ends = new Date(at.getTime() + opts.cooldownMinutes * MINUTE_MS);
  const ago = Math.floor((opts.now.getTime() - at.getTime()) / MINUTE_MS);
  const when = future
    ? `last restart recorded at ${stamp(last.at)}, in the future (clock skew), so counted as now, ` +
      `${stamp(at)} (${last.what} via ${last.via})`
    : `last restarted ${ago} min ago at ${stamp(at)} (${last.what} via ${last.via})`;
  if (opts.now.getTime() >= ends.getTime()) return { note: '' };
  if (request.trigger === 'on-demand')
    return { note: `; ${when}: an on-demand restart ignores the cooldown` };
  return {
    skip:
      `${when}; alarm restarts wait for the ${opts.cooldownMinutes}-min cooldown, which ends at ${stamp(ends)}` +
      `: not restarted for ${request.reason}`,
  };
};

/** Rows that say a selection found nothing, or a named target is missing: failed on demand, skipped for an alarm. */
const missing = (request: RestartRequest) =>
  (request.trigger === 'on-demand' ? 'failed' : 'skipped') as 'failed' | 'skipped';

/** Why a target without `nightshift:restartable=true` is left alone, naming the value it has instead. */
const notOptedIn = (kind: 'instance' | 'service', tags: TagMap) => {
  const value = tags[RESTARTABLE_TAG];
  return (
    `not opted in: the ${kind} has no ${RESTARTABLE_TAG}=true tag` +
    (value === undefined ? '' : ` (it is ${quote(value)})`)
  );
};

/** Why an instance cannot take the command, or undefined when it can (the guard aside). */
const instanceBlocked = (i: InstanceState): string | undefined => {
  if (i.state !== 'running') return `not running (${i.state}); nothing sent`;
  if (i.tags[RESTARTABLE_TAG] !== 'true') return `${notOptedIn('instance', i.tags)}; nothing sent`;
  // SendCommand refuses the whole call (InvalidInstanceId) when one of its instances cannot take it.
  if (i.pingStatus !== ONLINE) {
    const status =
      i.pingStatus === undefined
        ? 'SSM DescribeInstanceInformation does not list it'
        : `PingStatus ${i.pingStatus}`;
    return `not an SSM managed instance, or its agent is offline (${status}); nothing sent`;
  }
  return undefined;
};

/**
 * ECS refuses forceNewDeployment for the blue/green (CODE_DEPLOY) and EXTERNAL deployment controllers:
 * UpdateService changes little more than the desired count for them, and a new deployment is made with
 * CodeDeploy or the external controller.
 */
const REDEPLOYABLE_CONTROLLER = 'ECS';

/**
 * Why a service cannot be redeployed, and its outcome, or undefined when it can (the guard aside). A
 * service ECS cannot redeploy is `skipped` on demand, and `failed` for an alarm: an alarm tagged to
 * restart what it never can is misconfigured, and must page someone rather than be skipped every time.
 */
const serviceBlocked = (
  s: ServiceState,
  request: RestartRequest,
): { outcome: 'skipped' | 'failed'; detail: string } | undefined => {
  if (s.tags[RESTARTABLE_TAG] !== 'true')
    return { outcome: 'skipped', detail: `${notOptedIn('service', s.tags)}; nothing redeployed` };
  const controller = s.deploymentController ?? REDEPLOYABLE_CONTROLLER;
  if (controller !== REDEPLOYABLE_CONTROLLER) {
    const detail =
      `its deployment controller is ${controller}, which does not take UpdateService forceNewDeployment: ` +
      `start a new deployment with ${controller === 'CODE_DEPLOY' ? 'CodeDeploy' : 'the external controller'} ` +
      'instead; nothing redeployed, no restart recorded';
    return request.trigger === 'alarm'
      ? {
          outcome: 'failed',
          detail:
            `${detail}; ${request.reason} can never restart it: change the alarm's ${RESTART_TAG} tag, or its ` +
            'dimensions',
        }
      : { outcome: 'skipped', detail };
  }
  return undefined;
};

/** The scopes of the targets a request could restart: those the guard must be read for. */
export const guardedScopes = (request: RestartRequest, estate: RestartEstate): string[] =>
  request.what.kind === 'ecs-service'
    ? estate.services.filter((s) => serviceBlocked(s, request) === undefined).map((s) => restartScope(s.arn))
    : estate.instances.filter((i) => instanceBlocked(i) === undefined).map((i) => restartScope(i.arn));

/**
 * The row of a target that can take the restart: what the guard and the last-restart tag say. The
 * guard (the lease table, atomic) decides first; the tag then still holds alarm restarts off for its
 * cooldown (it also records restarts made from another stage, which has its own lease table).
 */
const guarded = <W extends GuardedWork>(
  base: Omit<W, 'hasWork' | 'detail' | 'scope'>,
  tags: TagMap,
  request: RestartRequest,
  opts: PlanOptions,
  guard: GuardOptions,
  work: string,
): W => {
  const scope = restartScope(base.arn);
  const row = { ...base, scope } as unknown as W;
  const cooldown = cooldownReason(tags, request, opts);
  const detail = (note: string) =>
    `${work}; restart time recorded in tag ${LAST_RESTART_TAG}${cooldown.note}${note}`;
  // The digest names the last restart (record and tag): an apply refuses a plan confirmed before
  // another restart of the target.
  const digestKey = (record: string) => `${work}; ${record}; tag ${tags[LAST_RESTART_TAG] ?? 'none'}`;
  if ('error' in opts.records) {
    if (cooldown.skip) return { ...row, hasWork: false, outcome: 'skipped', detail: cooldown.skip };
    return {
      ...row,
      hasWork: true,
      digestKey: digestKey('restart record not read'),
      detail: detail(`; its restart record could not be read while planning (${opts.records.error})`),
    };
  }
  const record = opts.records.records.get(scope);
  const decision = decideRestart(scope, record, guard, opts.records.commands?.get(scope));
  if (decision.kind === 'skip')
    return { ...row, hasWork: false, outcome: 'skipped', detail: decision.reason };
  if (decision.kind === 'flap') {
    return { ...row, hasWork: false, outcome: 'failed', detail: decision.reason, latch: decision.write };
  }
  if (cooldown.skip) return { ...row, hasWork: false, outcome: 'skipped', detail: cooldown.skip };
  return {
    ...row,
    hasWork: true,
    digestKey: digestKey(lastRestartKey(record)),
    detail: detail(decision.note),
    claim: decision.write,
  };
};

/** Whether nightshift parked the target, or is about to (shared/parked.ts). */
const parkOf = (facts: Parameters<typeof parkDecision>[0], opts: PlanOptions): ParkDecision =>
  parkDecision(facts, opts.schedules ?? { schedules: new Map() }, opts.now);

/** The row of a target nightshift parked or is about to park: skipped, nothing claimed, sent or tagged. */
const heldRow = (decision: { reason: string }, request: RestartRequest, hint: string, nothing: string) => ({
  hasWork: false as const,
  outcome: 'skipped' as const,
  detail: `${decision.reason}: not restarted for ${request.reason} (a parked target restarts nothing; its restart records are left as they are); ${hint}; ${nothing}`,
});

/** A row that goes ahead, with what the park check could not tell (an unreadable schedule) added. */
const noted = <W extends PlannedWork>(row: W, decision: ParkDecision): W =>
  !decision.held && decision.note ? { ...row, detail: `${row.detail}; ${decision.note}` } : row;

const instancePark = (i: InstanceState, opts: PlanOptions): ParkDecision =>
  i.group ? parkOf({ tags: i.group.tags }, opts) : { held: false };

const servicePark = (s: ServiceState, opts: PlanOptions): ParkDecision => {
  const park = parkOf(
    { tags: s.tags, ...(s.clusterTags && { parent: { tags: s.clusterTags, name: `cluster ${s.cluster}` } }) },
    opts,
  );
  if (park.held || s.clusterTagsError === undefined) return park;
  const unread = `its cluster's tags could not be read (${s.clusterTagsError}): its cluster's schedule and override were not checked`;
  return { held: false, note: park.note ? `${park.note}; ${unread}` : unread };
};

const planInstance = (
  i: InstanceState,
  request: RestartRequest,
  command: string,
  opts: PlanOptions,
  guard: GuardOptions,
): InstanceWork => {
  const base = { arn: i.arn, type: 'ec2-instance' as const, instanceId: i.id };
  const park = instancePark(i, opts);
  if (park.held && i.group) {
    const hint = wakeHint(
      { kind: 'autoscaling-group', group: i.group.name },
      i.group.tags[SCHEDULE_TAG] !== undefined,
    );
    return {
      ...base,
      scope: restartScope(i.arn),
      ...heldRow(
        { reason: `its Auto Scaling group ${i.group.name} is ${park.reason}` },
        request,
        hint,
        'nothing sent',
      ),
    };
  }
  const blocked = instanceBlocked(i);
  if (blocked)
    return { ...base, scope: restartScope(i.arn), hasWork: false, outcome: 'skipped', detail: blocked };
  return noted(
    guarded<InstanceWork>(base, i.tags, request, opts, guard, `${command} (${request.reason})`),
    park,
  );
};

const planService = (
  s: ServiceState,
  request: RestartRequest,
  opts: PlanOptions,
  guard: GuardOptions,
): ServiceWork => {
  const base = { arn: s.arn, type: 'ecs-service' as const, cluster: s.cluster, service: s.name };
  const park = servicePark(s, opts);
  if (park.held) {
    const hint = wakeHint({ kind: 'ecs-service', cluster: s.cluster, service: s.name }, true);
    return {
      ...base,
      scope: restartScope(s.arn),
      ...heldRow(park, request, hint, 'nothing redeployed'),
    };
  }
  const blocked = serviceBlocked(s, request);
  if (blocked) return { ...base, scope: restartScope(s.arn), hasWork: false, ...blocked };
  return noted(
    guarded<ServiceWork>(
      base,
      s.tags,
      request,
      opts,
      guard,
      `redeploy (UpdateService forceNewDeployment; ${request.reason})`,
    ),
    park,
  );
};

/**
 * Decides, from the observed targets, their restart records, their last-restart tags and the time,
 * what each target gets, with a reason for each. An instance gets the command only when it is running,
 * opted in with `nightshift:restartable=true` and online in SSM; a service only when it is opted in and
 * deployed by ECS itself; then the restart guard (guard.ts: in progress elsewhere, cooldown, flap
 * guard) and the tag's cooldown decide. Every other target is `skipped` (or `failed` by the flap
 * guard) here, never tagged or sent to, so only the outcomes of commands SSM ran count towards
 * MAX_ERRORS. Pure: no I/O, no clock, no environment.
 */
export const planRestart = (
  request: RestartRequest,
  estate: RestartEstate,
  opts: PlanOptions,
): RestartPlan => {
  const tagValue = encodeLastRestart({ at: opts.now, what: whatText(request.what), via: request.trigger });
  const guard: GuardOptions = {
    trigger: request.trigger,
    reason: request.reason,
    what: whatText(request.what),
    cooldownMinutes: opts.cooldownMinutes,
    maxPerHour: opts.maxPerHour,
    now: opts.now,
    owner: opts.owner,
    runUntil: opts.runUntil,
    ...(request.stateChange && { stateChange: request.stateChange }),
  };
  const outcome = missing(request);
  const selection: PlannedWork[] = [];
  for (const [group, members] of Object.entries(estate.groups)) {
    const arn = `autoScalingGroupName/${group}`;
    const tags = estate.groupTags?.[group] ?? {};
    const park = members === undefined ? undefined : parkOf({ tags }, opts);
    if (members === undefined) {
      selection.push({
        arn,
        type: 'autoscaling-group',
        hasWork: false,
        outcome,
        detail: 'Auto Scaling group not found; nothing sent',
      });
    } else if (members.length === 0 && park?.held) {
      // A parked group has no InService instances: the row says why, with the hint. (Instances still in
      // service in it get rows of their own, held the same way.)
      const hint = wakeHint({ kind: 'autoscaling-group', group }, tags[SCHEDULE_TAG] !== undefined);
      selection.push({
        arn,
        type: 'autoscaling-group',
        ...heldRow({ reason: `the group is ${park.reason}` }, request, hint, 'nothing sent'),
      });
    } else if (members.length === 0) {
      selection.push({
        arn,
        type: 'autoscaling-group',
        hasWork: false,
        outcome: 'skipped',
        detail: 'no InService instances; nothing sent',
      });
    }
  }
  if (request.selection.tags && !estate.instances.some((i) => i.state === 'running')) {
    const tags = Object.entries(request.selection.tags)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ');
    selection.push({
      arn: `tags:${tags}`,
      type: 'ec2-instance',
      hasWork: false,
      outcome,
      detail: `no running instance carries tags ${tags}; nothing sent`,
    });
  }

  const missingInstances: InstanceWork[] = estate.missingInstances.map((id) => ({
    arn: id,
    type: 'ec2-instance',
    instanceId: id,
    scope: restartScope(id),
    hasWork: false,
    outcome,
    detail: 'instance not found; nothing sent',
  }));
  const missingServices: ServiceWork[] = estate.missingServices.map((ref) => ({
    arn: ref,
    type: 'ecs-service',
    cluster: ref.split('/')[0] ?? '',
    service: ref.split('/').slice(1).join('/'),
    scope: restartScope(ref),
    hasWork: false,
    outcome,
    detail: 'ECS service not found (or not ACTIVE); nothing redeployed',
  }));

  if (request.what.kind === 'ecs-service') {
    return {
      selection,
      instances: [],
      services: [...missingServices, ...estate.services.map((s) => planService(s, request, opts, guard))],
      tagValue,
      guard,
    };
  }
  const command = shellCommand(request.what);
  const instances = [
    ...missingInstances,
    ...estate.instances.map((i) => planInstance(i, request, command, opts, guard)),
  ];
  const ids = instances.filter((w) => w.hasWork).map((w) => w.instanceId);
  return {
    selection,
    instances,
    services: [],
    tagValue,
    guard,
    ...(ids.length > 0 && {
      send: {
        commands: [command],
        comment: `nightshift ssm-restart: ${request.reason}`.slice(0, COMMENT_LENGTH),
        batches: chunk(ids, SEND_BATCH),
      },
    }),
  };
};
