/**
 * Start order in an environment (tag `nightshift:environment`, shared/environment.ts): databases first,
 * then Auto Scaling groups and capacity, then services. ecs-scheduler gates its starts on a read of the
 * tier before: a group (standalone, or a cluster's capacity) or a service whose environment has a
 * database that is not ready yet is `waiting` (read-only RDS calls; rds-scheduler starts them); a
 * service whose environment has a standalone Auto Scaling group (not a capacity provider) that is not in
 * service at its desired capacity is `waiting` too — a group this run starts included, so within one run
 * the groups start and the services wait for a later run. Rows name each resource waited for and its
 * state; no run sleeps. A capacity-provider group comes back with its cluster's services, in the same
 * run (plan.ts: the service requires the group's restore), as before.
 */
import type { RDSClient } from '@aws-sdk/client-rds';
import { paginateDescribeAutoScalingGroups } from '@aws-sdk/client-auto-scaling';
import { OutOfTimeError, pagesWithin } from '#shared/deadline.ts';
import { errorMessage } from '#shared/errors.ts';
import {
  databaseReady,
  ENVIRONMENT_TAG,
  environmentOf,
  groupReady,
  waitingFor,
  type DatabaseState,
} from '#shared/environment.ts';
import { PARKED_TAG } from '#shared/group-tags.ts';
import type { LeaseStore } from '#shared/lease.ts';
import { tagMapUpper, type TagMap } from '#shared/tags.ts';
import { capacityProviderGroups } from './groups.ts';
import { onDemand, type Estate, type OnDemand, type Reader } from './inventory.ts';
import type { PlannedAction } from './plan.ts';
import { decodeGroup } from './saved.ts';
import { readStarted, type StartRecord } from './started.ts';

/** A database of an environment, as a start gate reads it. */
export interface EnvironmentDatabase extends DatabaseState {
  environment: string;
}

/** A standalone Auto Scaling group of an environment, as the services' start gate reads it. */
export interface EnvironmentGroup {
  arn: string;
  name: string;
  environment: string;
  /**
   * The capacity it is ready at: the desired capacity saved in `nightshift:stopped` while nightshift has
   * it parked (it is not ready until it is back), else its live desired capacity.
   */
  desired: number;
  /** Instances in the `InService` lifecycle state (a warm pool's are not listed by AWS). */
  inService: number;
  /** Parked by nightshift (`nightshift:stopped` on it). */
  parked: boolean;
  /** Its `nightshift:stopped` cannot be read: never ready (its own stop and start fail on it too). */
  unreadable?: true;
}

/** Ready for the services behind it (shared/environment.ts groupReady), and its saved state readable. */
const ready = (g: EnvironmentGroup) => !g.unreadable && groupReady(g);

/** An instance's share of DesiredCapacity: its WeightedCapacity (a string), 1 when unset. */
const weightOf = (weighted: string | undefined): number => {
  const n = weighted === undefined ? NaN : Number(weighted);
  return Number.isFinite(n) && n > 0 ? n : 1;
};

/** DescribeAutoScalingGroups: MaxRecords up to 100 (default 50), the rest behind NextToken. */
const GROUPS_PAGE = 100;

/**
 * Every Auto Scaling group of the account that carries `nightshift:environment` (a `tag-key` filter,
 * 100 a page, every page; the value is compared here), with its readiness. Capacity providers are
 * among them: the caller leaves those out.
 */
export const readEnvironmentGroups = async ({ clients, hasTime }: Reader): Promise<EnvironmentGroup[]> => {
  const out: EnvironmentGroup[] = [];
  const pages = paginateDescribeAutoScalingGroups(
    { client: clients.autoscaling },
    { Filters: [{ Name: 'tag-key', Values: [ENVIRONMENT_TAG] }], MaxRecords: GROUPS_PAGE },
  );
  for await (const page of pagesWithin(pages, hasTime, `Auto Scaling groups tagged ${ENVIRONMENT_TAG}`)) {
    for (const g of page.AutoScalingGroups ?? []) {
      const tags = tagMapUpper(g.Tags);
      const environment = environmentOf(tags);
      // `Status` is set only while a group is being deleted: nothing will run on it.
      if (!environment || g.Status !== undefined) continue;
      const text = tags[PARKED_TAG];
      let saved: number | undefined;
      try {
        saved = text === undefined ? undefined : decodeGroup(text).desired;
      } catch {
        saved = undefined;
      }
      out.push({
        arn: g.AutoScalingGroupARN ?? '',
        name: g.AutoScalingGroupName ?? '',
        environment,
        desired: saved ?? g.DesiredCapacity ?? 0,
        // DesiredCapacity counts capacity units: instance weights (a MixedInstancesPolicy) or, with a
        // DesiredCapacityType of vcpu / memory-mib, each instance's WeightedCapacity. Summed the same way.
        inService: (g.Instances ?? [])
          .filter((i) => i.LifecycleState === 'InService')
          .reduce((sum, i) => sum + weightOf(i.WeightedCapacity), 0),
        parked: text !== undefined,
        ...(text !== undefined && saved === undefined && { unreadable: true as const }),
      });
    }
  }
  return out;
};

/** A capacity group's environment: its own tag, else that of a cluster it serves. */
const groupEnvironment = (g: { name: string; tags: TagMap }, estate: Estate): string | undefined =>
  environmentOf(
    g.tags,
    ...(estate.groupUsers[g.name] ?? []).flatMap((arn) => {
      const c = estate.clusters.find((x) => x.arn === arn);
      return c ? [c.tags] : [];
    }),
  );

/** The environment of every service and capacity group of the estate, by ARN. */
const estateEnvironments = (estate: Estate): Map<string, string> => {
  const envOf = new Map<string, string>();
  for (const c of estate.clusters) {
    for (const s of c.services) {
      const env = environmentOf(s.tags, c.tags);
      if (env) envOf.set(s.arn, env);
    }
  }
  for (const g of estate.groups) {
    const env = groupEnvironment(g, estate);
    if (env) envOf.set(g.arn, env);
  }
  return envOf;
};

/** What the pure gate decides from: everything read, and the time. */
export interface GateState {
  /** The environment of each resource a row may name: services, capacity groups, standalone groups. */
  envOf: ReadonlyMap<string, string>;
  databases: readonly EnvironmentDatabase[];
  /** The standalone groups (capacity providers left out) of the environments, as read. */
  groups: readonly EnvironmentGroup[];
  /** nightshift's last start of each of those groups (started.ts), for the start timeout. */
  started: ReadonlyMap<string, StartRecord>;
  /** ENVIRONMENT_START_TIMEOUT_MINUTES in ms. */
  timeoutMs: number;
  now: Date;
}

/**
 * How long after nightshift's start a group that is not in service at desired is still that start's
 * laggard (as rds-scheduler's START_WATCH_MS): the start record is kept 60 days and nothing records
 * "ready since", so past this a group short of desired (an instance replaced in the afternoon) is no
 * longer blamed on the morning's start.
 */
export const GROUP_START_WATCH_MS = 24 * 3_600_000;

const describeDb = (d: DatabaseState) =>
  d.kind === 'cluster' && d.status === 'available' ? `writer ${d.writerStatus}` : d.status;

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');
const minutes = (ms: number) => Math.floor(ms / 60_000);

/** A group's state in a service's `waiting` reason. */
const describeGroup = (g: EnvironmentGroup, startingTo: number | undefined) =>
  startingTo !== undefined
    ? `started by this run, 0 of ${startingTo} in service`
    : g.unreadable
      ? `${PARKED_TAG} unreadable (${g.inService} in service): fix or delete the tag`
      : g.parked
        ? `parked by nightshift (${g.inService} of ${g.desired} in service)`
        : `${g.inService} of ${g.desired} in service`;

/** The desired capacity a start row resizes a group to, when it does (a row that only removes the tag does not). */
const restoresTo = (p: PlannedAction): number | undefined => {
  const size = p.steps.find((s) => s.op === 'set-group-size');
  return size?.op === 'set-group-size' ? size.size.desired : undefined;
};

/** Groups nightshift started that are still short: the time since the start, within the watch. */
const lagOf = (g: EnvironmentGroup, state: GateState): { since: Date; elapsed: number } | undefined => {
  const record = state.started.get(g.arn);
  if (!record || g.parked) return undefined;
  const elapsed = state.now.getTime() - record.at.getTime();
  return elapsed < 0 || elapsed > GROUP_START_WATCH_MS ? undefined : { since: record.at, elapsed };
};

const groupRow = (g: EnvironmentGroup, outcome: PlannedAction['outcome'], detail: string): PlannedAction => ({
  arn: g.arn,
  type: 'autoscaling-group',
  name: g.name,
  steps: [],
  outcome,
  detail,
});

/**
 * The start rows gated on the tier before each (pure): a row that would start a group or a service in
 * an environment whose databases are not all ready, and a service row whose environment has a
 * standalone group not in service at desired (or started by this very run), become `waiting` (steps
 * dropped), naming each one and its state. A group nightshift started that is still short of desired
 * ENVIRONMENT_START_TIMEOUT_MINUTES after that start gets a `failed` row (its own row, rewritten when it
 * has one with nothing to do, else an extra one); before that, its own idle row says it is `waiting`.
 * The services keep waiting either way. `extra`: the rows of laggards no phase has a row for.
 */
export const gateRows = (
  phases: readonly PlannedAction[][],
  state: GateState,
  /** Rows that start nothing (a reconcile's idle rows): only a laggard group's own row is rewritten. */
  idle: readonly PlannedAction[] = [],
): Gated => {
  const dbBlockers = new Map<string, EnvironmentDatabase[]>();
  for (const d of state.databases) {
    if (databaseReady(d)) continue;
    dbBlockers.set(d.environment, [...(dbBlockers.get(d.environment) ?? []), d]);
  }
  // Tier 1: a group or service waits for the databases of its environment — the groups first, so that a
  // service's reason names its groups as they will be after this gate (a group waiting too is parked).
  const dbGate =
    (groupsFrom: readonly PlannedAction[][]) =>
    (p: PlannedAction): PlannedAction => {
      const env = state.envOf.get(p.arn);
      const waiting = env === undefined || p.steps.length === 0 ? undefined : dbBlockers.get(env);
      if (!waiting) return p;
      const groups = p.type === 'ecs-service' ? groupBlockersFor(env!, groupsFrom, state) : [];
      const names = [...waiting.map((d) => ({ name: d.id, state: describeDb(d) })), ...groups];
      return {
        ...p,
        steps: [],
        outcome: 'waiting',
        detail:
          `${waitingFor(names)} (environment ${env}: databases ${groups.length > 0 ? 'and Auto Scaling groups ' : ''}start first); ` +
          'nothing changed — a later run starts it (--force starts it now)',
      };
    };
  const groupsGated = phases.map((phase) =>
    phase.map((p) => (p.type === 'ecs-service' ? p : dbGate(phases)(p))),
  );
  const dbGated = groupsGated.map((phase) =>
    phase.map((p) => (p.type === 'ecs-service' ? dbGate(groupsGated)(p) : p)),
  );
  // Tier 2: a service waits for the standalone groups of its environment, those this run starts included.
  const serviceGated = dbGated.map((phase) =>
    phase.map((p): PlannedAction => {
      const env = state.envOf.get(p.arn);
      if (p.type !== 'ecs-service' || env === undefined || p.steps.length === 0) return p;
      const waiting = groupBlockersFor(env, dbGated, state);
      if (waiting.length === 0) return p;
      return {
        ...p,
        steps: [],
        outcome: 'waiting',
        detail:
          `${waitingFor(waiting)} (environment ${env}: Auto Scaling groups start first); ` +
          'nothing changed — a later run starts it (--force starts it now)',
      };
    }),
  );
  // The start timeout, for the groups services wait for.
  const waitedFor = new Set(
    serviceGated
      .flat()
      .filter((p) => p.type === 'ecs-service' && p.outcome === 'waiting')
      .map((p) => state.envOf.get(p.arn)),
  );
  const limit = minutes(state.timeoutMs);
  const verdicts = new Map<string, { failed: boolean; detail: string }>();
  for (const g of state.groups) {
    if (!waitedFor.has(g.environment) || ready(g)) continue;
    const lag = lagOf(g, state);
    if (!lag) continue;
    const short = `${g.inService} of ${g.desired} in service`;
    verdicts.set(
      g.arn,
      lag.elapsed > state.timeoutMs
        ? {
            failed: true,
            detail:
              `not in service at desired ${minutes(lag.elapsed)} min after nightshift started it (at ${iso(lag.since)}): ${short} — ` +
              `more than ENVIRONMENT_START_TIMEOUT_MINUTES (${limit}); the services of environment ${g.environment} keep waiting: ` +
              "look at the group's activity history (launch failures, capacity, health checks)",
          }
        : {
            failed: false,
            detail:
              `${waitingFor([{ name: g.name, state: short, since: iso(lag.since) }])} ` +
              `(started by nightshift ${minutes(lag.elapsed)} min ago; failed after ${limit} min, ENVIRONMENT_START_TIMEOUT_MINUTES)`,
          },
    );
  }
  const seen = new Set<string>();
  const verdict = (p: PlannedAction): PlannedAction => {
    const v = verdicts.get(p.arn);
    if (!v || p.type !== 'autoscaling-group') return p;
    seen.add(p.arn);
    if (p.steps.length > 0 || (p.outcome !== undefined && p.outcome !== 'unchanged')) return p;
    return { ...p, outcome: v.failed ? 'failed' : 'waiting', detail: `${p.detail}; ${v.detail}` };
  };
  const out = serviceGated.map((phase) => phase.map(verdict));
  const idleOut = idle.map(verdict);
  const extra = state.groups.flatMap((g) => {
    const v = verdicts.get(g.arn);
    return v?.failed && !seen.has(g.arn) ? [groupRow(g, 'failed', v.detail)] : [];
  });
  return { phases: out, idle: idleOut, extra };
};

/** Gated rows: the start's phases, the idle rows, and the rows of laggard groups no row named. */
export interface Gated {
  phases: PlannedAction[][];
  idle: PlannedAction[];
  extra: PlannedAction[];
}

/**
 * The standalone groups of `env` a service waits for, named with their state: not in service at
 * desired, or started by a row of `phases` (which read them parked).
 */
const groupBlockersFor = (
  env: string,
  phases: readonly PlannedAction[][],
  state: GateState,
): { name: string; state: string }[] => {
  const rows = new Map(
    phases
      .flat()
      .filter((p) => p.type === 'autoscaling-group')
      .map((p) => [p.arn, p]),
  );
  return state.groups
    .filter((g) => g.environment === env)
    .flatMap((g) => {
      const row = rows.get(g.arn);
      const startingTo = row ? restoresTo(row) : undefined;
      // A group this run does not bring back is either ready, or parked and meant to stay so (its
      // schedule, a sleep, a stop): the services do not wait for it. One this run restores, they do.
      if (startingTo === undefined && (ready(g) || (g.parked && !g.unreadable))) return [];
      return [{ name: g.name, state: describeGroup(g, startingTo) }];
    });
};

/** What gateStart reads with, besides the reader. */
export interface GateIO {
  reader: Reader;
  /** Made on first use: only a start with work in an environment reads its databases. */
  rds: OnDemand<RDSClient>;
  store: LeaseStore | undefined;
  timeoutMs: number;
  now: Date;
}

/**
 * A start's rows gated on the tier before each (gateRows), from reads made only when a row with work
 * belongs to an environment (or is a standalone group, whose environment the group read tells): the
 * environment's databases (RDS), its standalone groups (one DescribeAutoScalingGroups pass over the
 * groups tagged `nightshift:environment`, capacity providers left out) and, for the groups still short,
 * nightshift's start records (the lease table).
 */
export const gateStart = async (
  phases: readonly PlannedAction[][],
  estate: Estate,
  io: GateIO,
  idle: readonly PlannedAction[] = [],
): Promise<Gated> => {
  const none: Gated = { phases: [...phases], idle: [...idle], extra: [] };
  const envOf = estateEnvironments(estate);
  const capacity = new Set(estate.groups.map((g) => g.arn));
  const work = phases.flat().filter((p) => p.steps.length > 0);
  const standalone = work.some((p) => p.type === 'autoscaling-group' && !capacity.has(p.arn));
  if (!standalone && !work.some((p) => envOf.has(p.arn))) return none;
  try {
    return await gateFromReads(phases, estate, io, idle, envOf, capacity, work);
  } catch (error) {
    // A read that failed (throttled past the retries, refused) fails the rows it would have gated — those
    // of an environment, and standalone groups, whose environment that read would tell — and only them:
    // every other row goes ahead. Running out of time stays the run's (nothing planned from half a read).
    if (error instanceof OutOfTimeError) throw error;
    const why = errorMessage(error);
    const fail = (p: PlannedAction): PlannedAction => {
      const env = envOf.get(p.arn);
      const gated = env !== undefined || (p.type === 'autoscaling-group' && !capacity.has(p.arn));
      if (!gated || p.steps.length === 0) return p;
      return {
        ...p,
        steps: [],
        outcome: 'failed',
        detail:
          `${env === undefined ? 'its environment' : `environment ${env}`}: the tier before it could not be read (${why}), ` +
          'so whether it is ready is not known; nothing changed — the next run tries again (--force starts it now)',
      };
    };
    return { phases: phases.map((phase) => phase.map(fail)), idle: [...idle], extra: [] };
  }
};

const gateFromReads = async (
  phases: readonly PlannedAction[][],
  estate: Estate,
  io: GateIO,
  idle: readonly PlannedAction[],
  envOf: Map<string, string>,
  capacity: ReadonlySet<string>,
  work: readonly PlannedAction[],
): Promise<Gated> => {
  const none: Gated = { phases: [...phases], idle: [...idle], extra: [] };
  const tagged = await readEnvironmentGroups(io.reader);
  for (const g of tagged) if (!envOf.has(g.arn)) envOf.set(g.arn, g.environment);
  const environments = new Set(work.flatMap((p) => envOf.get(p.arn) ?? []));
  if (environments.size === 0) return none;
  // The RDS reads and client are imported here (databases.ts, a chunk of their own): the runs that start
  // nothing in an environment never load them.
  const { readEnvironmentDatabases } = await import('./databases.ts');
  const databases = await readEnvironmentDatabases(await onDemand(io.rds), environments, io.reader.hasTime);
  const servicesIn = new Set(
    work.filter((p) => p.type === 'ecs-service').flatMap((p) => envOf.get(p.arn) ?? []),
  );
  const candidates = tagged.filter((g) => servicesIn.has(g.environment) && !capacity.has(g.arn));
  // Capacity providers come back with their cluster's services: read only when a group could be one.
  const providers =
    candidates.length > 0 ? await capacityProviderGroups(io.reader) : new Map<string, string>();
  const groups = candidates.filter((g) => !providers.has(g.arn));
  const short = groups.filter((g) => !g.parked && !ready(g)).map((g) => g.arn);
  const started = await readStarted(io.store, short, io.reader.hasTime);
  return gateRows(phases, { envOf, databases, groups, started, timeoutMs: io.timeoutMs, now: io.now }, idle);
};
