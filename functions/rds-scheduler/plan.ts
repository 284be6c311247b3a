/**
 * What rds-scheduler does to each database, and why, from the estate and the time. Pure: no I/O, no
 * clock, no environment.
 *
 * What AWS refuses to stop, checked here before any call (Amazon RDS User Guide, "Stopping an Amazon
 * RDS DB instance temporarily", Limitations; Amazon Aurora User Guide, "Stopping and starting an Amazon
 * Aurora DB cluster"): a read replica, or an instance that has read replicas; RDS for SQL Server in a
 * Multi-AZ deployment; an instance of an Aurora (or Multi-AZ DB) cluster, which is stopped as a cluster
 * (StopDBInstance "doesn't apply to … Aurora MySQL, and Aurora PostgreSQL. For Aurora clusters, use
 * StopDBCluster instead"); Aurora Serverless v1 (EngineMode `serverless`); a cluster of an Aurora global
 * database. Aurora Serverless v2 with a minimum capacity of 0 ACUs pauses by itself: left to it.
 */
import {
  databaseReady,
  ENVIRONMENT_TAG,
  environmentOf,
  groupAtRest,
  serviceAtRest,
  waitingFor,
} from '#shared/environment.ts';
import { RESTARTED_EVENTS } from '#events/rds-scheduler/schema.ts';
import type { PlannedWork } from '#shared/execute.ts';
import { decodeOverride, overrideActive, OVERRIDE_TAG, type Override } from '#shared/override.ts';
import { desiredState, evaluate, localLabel, type Evaluation, type Schedules } from '#shared/schedules.ts';
import { otherStage, protectedBy, matchesTags, type TagRule } from '#shared/tags.ts';
import type { Database, EnvironmentRest, Estate } from './inventory.ts';
import type { StartRecord } from './started.ts';

/** The tag a stop writes before it stops a database: `at=<UTC ISO time> by=nightshift`. Public contract. */
export const STOPPED_TAG = 'nightshift:stopped';
/** The tag a database opts in to reconcile with: `nightshift:schedule=<name>`. Public contract. */
export const SCHEDULE_TAG = 'nightshift:schedule';

export type Step =
  /** `previous`: the tag's value before (a re-stop), written back when the stop is refused. */
  | { op: 'tag-stopped'; value: string; previous?: string }
  | { op: 'stop' }
  | { op: 'start' }
  | { op: 'untag-stopped' }
  /** `fromNow`: its end is `--for` (or a cancel's "now") from now, which moves between a dry run and the apply. */
  | { op: 'set-override'; value: string; fromNow?: true }
  | { op: 'clear-override'; expected: string };

export interface PlannedDb extends PlannedWork {
  kind: 'instance' | 'cluster';
  id: string;
  steps: Step[];
  /**
   * Rows without steps that a later run does: `waiting` (for the database's own state or its
   * environment), `undone` (another run holds its lease).
   */
  later?: 'waiting' | 'undone';
}

export interface PlanOptions {
  protectedTags: readonly TagRule[];
  now: Date;
  /** `"force": true`: a stop does not wait for the environment's services and groups to rest. */
  force: boolean;
  /** The environments' services and groups (read for the stop gate); undefined when not read. */
  environments?: EnvironmentRest;
  /** Why they could not be read (a throttled or refused ECS / Auto Scaling read). */
  environmentsError?: string;
}

export const TYPE = { instance: 'rds-db-instance', cluster: 'rds-db-cluster' } as const;

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, 'Z');

/** The value of STOPPED_TAG for a stop at `now`. */
export const stoppedValue = (now: Date): string => `at=${iso(now)} by=nightshift`;

/** When nightshift stopped it, from STOPPED_TAG; undefined when the tag is absent or unreadable. */
export const stoppedAt = (db: Database): Date | undefined => {
  const at = db.tags[STOPPED_TAG]?.match(/(?:^| )at=(\S+)/)?.[1];
  const ms = at === undefined ? NaN : Date.parse(at);
  return Number.isNaN(ms) ? undefined : new Date(ms);
};

/**
 * AWS starts a database that has been stopped for seven days (RDS-EVENT-0154 / 0153). Without the event
 * (the rule off, or missed), a database that runs again with a `nightshift:stopped` at least this old is
 * taken for AWS's start; a younger one was started by someone (console, CLI, another tool), and
 * nightshift does not stop it again because of its tag (only an `enforced` schedule, or a stop, does).
 */
export const AUTO_START_AFTER_MS = 7 * 24 * 3_600_000;

/**
 * Whether a database that runs again with nightshift's tag was started by AWS after 7 days: no nightshift
 * start was recorded since the tag's `at=`, and RDS said so since (`autoStart`: the record the run of
 * RDS-EVENT-0154 / 0153 wrote), or the tag is at least AUTO_START_AFTER_MS old. A tag without a readable
 * `at=` says nothing: not an auto-start.
 */
export const autoStarted = (
  db: Database,
  now: Date,
  started?: StartRecord,
  autoStart?: StartRecord,
): boolean => {
  const at = stoppedAt(db);
  if (!at || (started && started.at.getTime() >= at.getTime())) return false;
  if (autoStart && autoStart.at.getTime() >= at.getTime()) return true;
  return now.getTime() - at.getTime() >= AUTO_START_AFTER_MS;
};

/** The databases whose auto-start record a reconcile needs: running again with STOPPED_TAG. Pure. */
export const autoStartCandidates = (estate: Estate): string[] =>
  candidates(estate)
    .filter((db) => db.tags[STOPPED_TAG] !== undefined && db.status !== 'stopped' && db.status !== 'stopping')
    .map((db) => db.arn);

/**
 * Why a database is protected: its own tags, or for an Aurora cluster those of any member instance (a
 * cluster whose writer is tagged `env=production` is production, whatever the cluster's tags say).
 */
const protection = (db: Database, rules: readonly TagRule[]): string | undefined => {
  const own = protectedBy(db.tags, rules);
  if (own) return own;
  for (const m of db.memberTags ?? []) {
    const guard = protectedBy(m.tags, rules);
    if (guard) return `${guard} on its instance ${m.id}`;
  }
  return undefined;
};

/** Why a database that carries a copied STOPPED_TAG counts as untagged (inventory.ts withoutCopiedTags). */
const copied = (db: Database) =>
  db.copiedStopTag === undefined
    ? ''
    : `; its ${STOPPED_TAG} "${db.copiedStopTag}" is older than the database (created ${db.createdAt ? iso(db.createdAt) : '?'}): copied from another database's snapshot, not its own`;

const base = (db: Database) => ({ arn: db.arn, type: TYPE[db.kind], kind: db.kind, id: db.id });

const idle = (db: Database, outcome: 'unchanged' | 'skipped' | 'failed', detail: string): PlannedDb => ({
  ...base(db),
  steps: [],
  hasWork: false,
  outcome,
  detail,
});

const waiting = (db: Database, detail: string): PlannedDb => ({
  ...base(db),
  steps: [],
  hasWork: false,
  outcome: 'unchanged',
  later: 'waiting',
  detail,
});

const prefixed = (why: string | undefined, text: string) => (why ? `${why}: ${text}` : text);

const CALL = {
  instance: { stop: 'StopDBInstance', start: 'StartDBInstance' },
  cluster: { stop: 'StopDBCluster', start: 'StartDBCluster' },
};

const work = (db: Database, steps: Step[], detail: string): PlannedDb => ({
  ...base(db),
  steps,
  hasWork: true,
  detail,
  // No clock in the digest: the tag's time differs between a dry run and its apply.
  digestKey: steps.map((s) => (s.op === 'stop' || s.op === 'start' ? CALL[db.kind][s.op] : s.op)).join(', '),
});

/** Why AWS refuses to stop this database, before any call; undefined when it can be stopped. */
export const unstoppable = (db: Database): string | undefined => {
  // DescribeDBInstances / DescribeDBClusters also list Neptune and DocumentDB (they share the RDS API):
  // not RDS databases, not this function's to stop.
  if (db.engine === 'neptune' || db.engine === 'docdb')
    return `${db.engine === 'neptune' ? 'Neptune' : 'DocumentDB'} (engine ${db.engine}): not an RDS database; rds-scheduler leaves it alone`;
  if (db.kind === 'instance') {
    if (db.memberOf)
      return `member of cluster ${db.memberOf}: the cluster is stopped and started, never its instances`;
    if (db.replicaOf) return `read replica (of ${db.replicaOf}): RDS cannot stop a read replica`;
    if (db.replicas.length > 0)
      return `has read replicas (${db.replicas.join(', ')}): RDS cannot stop a DB instance with read replicas`;
    // sqlserver-ee/-se/-ex/-web and RDS Custom's custom-sqlserver-*.
    if (db.engine.includes('sqlserver') && db.multiAz)
      return 'SQL Server Multi-AZ: RDS cannot stop an RDS for SQL Server DB instance in a Multi-AZ deployment';
    return undefined;
  }
  if (db.engineMode === 'serverless')
    return 'Serverless v1 (EngineMode serverless): Aurora cannot stop an Aurora Serverless v1 cluster';
  if (db.globalCluster !== undefined)
    return `member of global database ${db.globalCluster}: Aurora cannot stop a cluster of a global database`;
  if (db.replicaOf) return `read replica (cluster replicating ${db.replicaOf}): Aurora cannot stop it`;
  if (db.replicas.length > 0)
    return `has read replicas (${db.replicas.join(', ')}): Aurora cannot stop a cluster with cross-Region read replicas`;
  if (db.minCapacity === 0)
    return 'Aurora Serverless v2 clusters whose minimum capacity is 0 pause by themselves (min capacity 0): left to that';
  return undefined;
};

// States a database passes through on its way to `available` or `stopped`: a later run acts on it then.
// RDS refuses StopDBInstance / StopDBCluster unless the database is `available`, and StartDBInstance /
// StartDBCluster unless it is `stopped` (InvalidDBInstanceState "Instance <id> is not in available
// state.", InvalidDBClusterStateFault), so no call is sent in these states.
const PASSING = new Set([
  'starting',
  'stopping',
  'backing-up',
  'modifying',
  'maintenance',
  'upgrading',
  'rebooting',
  'renaming',
  'resetting-master-credentials',
  'configuring-enhanced-monitoring',
  'configuring-iam-database-auth',
  'configuring-log-exports',
  'storage-optimization',
  'creating',
  'migrating',
  'backtracking',
  'promoting',
  'failing-over',
  'update-iam-db-auth',
]);

/** The environment gate of a stop: what still runs in the database's environment, or undefined. */
const gate = (db: Database, opts: PlanOptions): string | undefined => {
  const env = environmentOf(db.tags);
  if (env === undefined || opts.force) return undefined;
  const services = opts.environments?.services.get(env) ?? [];
  const groups = opts.environments?.groups.get(env) ?? [];
  if (!opts.environments) return `environment ${env}: its services and groups were not read; nothing changed`;
  const blockers = [
    ...services
      .filter((s) => !serviceAtRest(s))
      .map((s) => ({
        name: s.name,
        state: `desiredCount ${s.desiredCount}, ${s.tasks} task(s) running or pending`,
      })),
    ...groups
      .filter((g) => !groupAtRest(g))
      .map((g) => ({
        name: g.name,
        state: `min/desired/max ${g.min}/${g.desired}/${g.max}, ${g.instances} instance(s)`,
      })),
  ];
  if (blockers.length === 0) return undefined;
  return (
    `environment ${env} (${ENVIRONMENT_TAG}): ${waitingFor(blockers)}; the database stops once every service ` +
    'and group of it rests (the next reconcile if it follows a schedule, else run the stop again; "force": true skips this)'
  );
};

/** A stop of one database: tag first (so an interrupted run is recognised), then the stop call. */
export const planStop = (db: Database, opts: PlanOptions, why?: string): PlannedDb => {
  const guard = protection(db, opts.protectedTags);
  if (guard) return idle(db, 'skipped', prefixed(why, `protected (${guard}): never stopped or started`));
  const refused = unstoppable(db);
  if (refused) return idle(db, 'skipped', prefixed(why, refused));
  const tag = db.tags[STOPPED_TAG];
  if (db.status === 'stopped' || db.status === 'stopping')
    return idle(
      db,
      'unchanged',
      prefixed(
        why,
        tag !== undefined
          ? `${db.status} (nightshift: ${tag})`
          : `${db.status}, not by nightshift${copied(db)}: left as it is, not tagged, and never started by nightshift`,
      ),
    );
  if (db.status !== 'available') {
    if (PASSING.has(db.status))
      return waiting(
        db,
        prefixed(why, `waiting for ${db.id}: ${db.status}; a later run stops it once it is available`),
      );
    return idle(db, 'skipped', prefixed(why, `status ${db.status}: RDS cannot stop it in this state`));
  }
  const env = environmentOf(db.tags);
  if (env !== undefined && !opts.force && opts.environmentsError !== undefined)
    return idle(
      db,
      'failed',
      prefixed(
        why,
        `environment ${env}: its services and groups could not be read (${opts.environmentsError}), so whether they rest is not known; ` +
          'nothing changed — the next run tries again ("force": true stops it without the check)',
      ),
    );
  const held = gate(db, opts);
  if (held) return waiting(db, prefixed(why, held));
  const what =
    tag === undefined
      ? 'available: '
      : autoStarted(db, opts.now)
        ? `available again although nightshift stopped it (${tag}; AWS starts a database stopped for 7 days): `
        : `available again although nightshift stopped it (${tag}; started since by someone, not by AWS's 7-day start): `;
  return work(
    db,
    [
      { op: 'tag-stopped', value: stoppedValue(opts.now), ...(tag !== undefined && { previous: tag }) },
      { op: 'stop' },
    ],
    prefixed(why, `${what}tags ${STOPPED_TAG}=${stoppedValue(opts.now)}, then ${CALL[db.kind].stop}`),
  );
};

/** A start of one database: only what nightshift stopped; the call, then the tag goes. */
export const planStart = (db: Database, opts: PlanOptions, why?: string): PlannedDb => {
  const guard = protection(db, opts.protectedTags);
  if (guard) return idle(db, 'skipped', prefixed(why, `protected (${guard}): never stopped or started`));
  if (db.kind === 'instance' && db.memberOf)
    return idle(
      db,
      'skipped',
      prefixed(
        why,
        `member of cluster ${db.memberOf}: the cluster is stopped and started, never its instances`,
      ),
    );
  const tag = db.tags[STOPPED_TAG];
  if (tag === undefined)
    return idle(
      db,
      'unchanged',
      prefixed(
        why,
        db.status === 'stopped'
          ? `stopped, not by nightshift (no ${STOPPED_TAG}${copied(db)}): never started by nightshift`
          : `${db.status}: nothing to start (no ${STOPPED_TAG})`,
      ),
    );
  if (db.status === 'stopped')
    return work(
      db,
      [{ op: 'start' }, { op: 'untag-stopped' }],
      prefixed(why, `stopped by nightshift (${tag}): ${CALL[db.kind].start}, then removes ${STOPPED_TAG}`),
    );
  if (db.status === 'stopping')
    return waiting(
      db,
      prefixed(why, `waiting for ${db.id}: stopping; a later run starts it once it is stopped`),
    );
  return work(
    db,
    [{ op: 'untag-stopped' }],
    prefixed(
      why,
      `${db.status} already (started since nightshift stopped it: ${tag}): removes ${STOPPED_TAG}`,
    ),
  );
};

const named = (dbs: readonly Database[], ref: string) =>
  dbs.find((d) => d.id === ref || d.arn === ref || d.id.toLowerCase() === ref.toLowerCase());

export interface Scope {
  action: 'stop' | 'start';
  instances?: string[];
  clusters?: string[];
  tags?: Record<string, string>;
}

/**
 * An explicit stop or start: the databases named (identifiers or ARNs; RDS identifiers are not case
 * sensitive), narrowed by `tags` when given, or every database whose own tags match. An Aurora member
 * instance named alone, or matched by tags, is `skipped` (its cluster is stopped instead). Pure.
 */
export const planAction = (scope: Scope, estate: Estate, opts: PlanOptions): PlannedDb[] => {
  const { missing, targets } = selectDatabases(scope, estate);
  return [
    ...missing,
    ...targets.map(
      (db) =>
        overruled(db, scope.action, opts.now) ??
        (scope.action === 'stop' ? planStop(db, opts) : planStart(db, opts)),
    ),
  ];
};

/**
 * An explicit stop of a database an active override keeps running (or a start of one it keeps stopped)
 * is refused: the next reconcile would undo it. Undefined when no active override says otherwise.
 */
const overruled = (db: Database, action: 'stop' | 'start', now: Date): PlannedDb | undefined => {
  const text = db.tags[OVERRIDE_TAG];
  if (text === undefined) return undefined;
  let o: Override;
  try {
    o = decodeOverride(text);
  } catch {
    return undefined;
  }
  if (!overrideActive(o, now) || o.state === (action === 'stop' ? 'stopped' : 'running')) return undefined;
  return idle(
    db,
    'skipped',
    `an override keeps it ${o.state} until ${iso(o.until)} (by ${o.by}${o.why ? `, why: ${o.why}` : ''}): ` +
      `a ${action} would be undone by the next reconcile; use nightshift ${action === 'stop' ? 'sleep' : 'wake'}, ` +
      'or end the override first (nightshift wake --cancel)',
  );
};

/**
 * The databases a scope names: by identifier or ARN (RDS identifiers are not case sensitive), narrowed
 * by `tags` when given, or every database whose own tags match; each once. A name not found is a
 * `failed` row. Pure.
 */
export const selectDatabases = (
  scope: Omit<Scope, 'action'>,
  estate: Estate,
): { missing: PlannedDb[]; targets: Database[] } => {
  const missingRows: PlannedDb[] = [];
  const found: Database[] = [];
  const byName = scope.instances !== undefined || scope.clusters !== undefined;
  const missing = (kind: 'instance' | 'cluster', ref: string): PlannedDb => {
    const id = ref.split(':').at(-1) ?? ref;
    return {
      arn: ref.startsWith('arn:') ? ref : `${kind === 'instance' ? 'db' : 'cluster'}:${ref}`,
      type: TYPE[kind],
      kind,
      id,
      steps: [],
      hasWork: false,
      outcome: 'failed',
      detail: `DB ${kind} ${id} not found in this account and region; nothing changed`,
    };
  };
  if (byName) {
    for (const ref of scope.instances ?? []) {
      const db = named(estate.instances, ref);
      if (!db) missingRows.push(missing('instance', ref));
      else found.push(db);
    }
    for (const ref of scope.clusters ?? []) {
      const db = named(estate.clusters, ref);
      if (!db) missingRows.push(missing('cluster', ref));
      else found.push(db);
    }
  } else {
    found.push(...estate.clusters, ...estate.instances);
  }
  const wanted = scope.tags;
  const seen = new Set<string>();
  const targets: Database[] = [];
  for (const db of found) {
    if (seen.has(db.arn)) continue;
    seen.add(db.arn);
    if (wanted && !matchesTags(db.tags, wanted)) continue;
    targets.push(db);
  }
  return { missing: missingRows, targets };
};

// ---------------------------------------------------------------------------------------------------
// Reconcile: the same schedules, overrides, grace period and stage scoping as ecs-scheduler.

export interface ReconcileOptions extends PlanOptions {
  schedules: Schedules;
  /** SCHEDULE_GRACE_MINUTES in ms. */
  graceMs: number;
  /** The lease-table record of nightshift's last start of each database, by ARN. */
  startedAt: ReadonlyMap<string, StartRecord>;
  /** When RDS said it started a database by itself (RDS-EVENT-0154 / 0153), by ARN: autoStartCandidates. */
  autoStarts?: ReadonlyMap<string, StartRecord>;
  /** OVERRIDE_MAX_HOURS in ms; undefined: no check. */
  overrideMaxMs?: number;
  stage?: string;
}

/** The databases reconcile considers: clusters, and instances that are not a cluster's members. */
const candidates = (estate: Estate): Database[] => [
  ...estate.clusters,
  ...estate.instances.filter((d) => d.memberOf === undefined),
];

const describeOverride = (o: Override, timeZone: string, now: Date) =>
  `override by ${o.by} until ${localLabel(timeZone, o.until, now)} ${timeZone}` +
  (o.why ? ` (why: ${o.why})` : '');

/** Adds the removal of an expired override to a row: after its last step, or as its only step. */
const clearing = (row: PlannedDb, text: string): PlannedDb => {
  const step = { op: 'clear-override' as const, expected: text };
  if (row.steps.length > 0)
    return {
      ...row,
      steps: [...row.steps, step],
      detail: `${row.detail}; then removes the expired ${OVERRIDE_TAG}`,
      digestKey: `${row.digestKey}, clear-override`,
    };
  if (row.outcome !== 'unchanged' || row.later) return row;
  return {
    ...row,
    steps: [step],
    hasWork: true,
    detail: `${row.detail}; removes the expired ${OVERRIDE_TAG}`,
    digestKey: 'clear-override',
  };
};

/** Whether nightshift acted on it since `since`: a stop's `at=`, else the start record. */
const actedSince = (db: Database, since: Date | undefined, started: StartRecord | undefined, now: Date) => {
  const t = since?.getTime() ?? -Infinity;
  const stopped = stoppedAt(db);
  if (stopped) return stopped.getTime() >= t ? { by: 'stop' as const, at: stopped } : undefined;
  if (db.tags[STOPPED_TAG] !== undefined) return undefined;
  if (started?.until && now.getTime() >= started.until.getTime()) return undefined;
  return started && started.at.getTime() >= t ? { by: 'start' as const, at: started.at } : undefined;
};

/** One opted-in database: its row, and the override that decided it (for the start record). */
const decide = (
  db: Database,
  opts: ReconcileOptions,
  evaluations: Map<string, Evaluation>,
): { row: PlannedDb; overrideUntil?: Date } => {
  const name = db.tags[SCHEDULE_TAG] ?? '';
  const schedule = opts.schedules.get(name);
  if (!schedule) {
    const known = [...opts.schedules.keys()].join(', ') || 'none';
    return {
      row: idle(
        db,
        'failed',
        `schedule "${name}" (tag ${SCHEDULE_TAG}) is not defined in infra/schedules.yml (known: ${known}); nothing changed — fix the tag or add the schedule and deploy`,
      ),
    };
  }
  let ev = evaluations.get(schedule.name);
  if (!ev) {
    try {
      ev = evaluate(schedule, opts.now);
    } catch (error) {
      return { row: idle(db, 'failed', `${schedule.name}: ${(error as Error).message}; nothing changed`) };
    }
    evaluations.set(schedule.name, ev);
  }
  const tz = schedule.timezone;
  const why = ev.reason;
  if (db.createdAt && opts.now.getTime() - db.createdAt.getTime() < opts.graceMs) {
    const from = new Date(db.createdAt.getTime() + opts.graceMs);
    return {
      row: idle(
        db,
        'skipped',
        `${why}; created at ${localLabel(tz, db.createdAt, opts.now)}, less than ${Math.round(opts.graceMs / 60_000)} min ago ` +
          `(SCHEDULE_GRACE_MINUTES): left alone until ${localLabel(tz, from, opts.now)} ${tz}`,
      ),
    };
  }
  const text = db.tags[OVERRIDE_TAG];
  let override: Override | undefined;
  if (text !== undefined) {
    try {
      override = decodeOverride(text);
    } catch (error) {
      return {
        row: idle(
          db,
          'failed',
          `${why}; ${(error as Error).message}; nothing changed — fix or remove the tag (nightshift wake --cancel)`,
        ),
      };
    }
  }
  const tagged = db.tags[STOPPED_TAG] !== undefined;
  if (override && overrideActive(override, opts.now)) {
    if (
      opts.overrideMaxMs !== undefined &&
      override.until.getTime() - opts.now.getTime() > opts.overrideMaxMs + 5 * 60_000
    ) {
      const hours = Math.round((opts.overrideMaxMs / 3_600_000) * 100) / 100;
      return {
        row: idle(
          db,
          'failed',
          `${why}; ${OVERRIDE_TAG} "${text}" lasts longer than the cap of ${hours} h (OVERRIDE_MAX_HOURS): not obeyed, nothing changed — ` +
            'end it with nightshift wake --cancel, or set a shorter one',
        ),
      };
    }
    const owhy = `${describeOverride(override, tz, opts.now)}, over ${why}`;
    if (override.state === 'running') {
      if (!tagged) return { row: idle(db, 'unchanged', `${owhy}; ${db.status} (not stopped by nightshift)`) };
      return { row: planStart(db, opts, owhy), overrideUntil: override.until };
    }
    return { row: planStop(db, opts, owhy) };
  }
  const expired = override
    ? ` (override by ${override.by} ended at ${localLabel(tz, override.until, opts.now)} ${tz})`
    : '';
  const decided = (row: PlannedDb) => ({ row: override && text ? clearing(row, text) : row });
  const ewhy = `${why}${expired}`;
  if (ev.state === 'any') return decided(idle(db, 'unchanged', `${ewhy}; no action`));
  const want = ev.state === 'stopped' ? 'stop' : 'start';
  if (want === 'start' && !tagged)
    return decided(
      idle(db, 'unchanged', `${ewhy}; ${db.status}, not stopped by nightshift (no ${STOPPED_TAG})`),
    );
  // Stopped by nightshift and started again by AWS after 7 days: the schedule still wants it stopped, so
  // it is stopped again whatever `enforced` says. One started by someone (its tag younger than that) is
  // theirs until the next transition unless the schedule is enforced.
  const restarted =
    want === 'stop' &&
    tagged &&
    db.status !== 'stopped' &&
    db.status !== 'stopping' &&
    autoStarted(db, opts.now, opts.startedAt.get(db.arn), opts.autoStarts?.get(db.arn));
  const acted =
    override || restarted ? undefined : actedSince(db, ev.since?.at, opts.startedAt.get(db.arn), opts.now);
  if (schedule.enforced || !acted)
    return decided(want === 'stop' ? planStop(db, opts, ewhy) : planStart(db, opts, ewhy));
  const until = ev.next ? `until ${localLabel(tz, ev.next.at, opts.now)}` : 'until the next transition';
  const running = db.status !== 'stopped' && db.status !== 'stopping';
  const what =
    acted.by === 'stop' && want === 'stop' && running
      ? `nightshift stopped it at ${localLabel(tz, acted.at, opts.now)}, since the transition, and someone started it since (not AWS's 7-day start)`
      : acted.by === want
        ? `nightshift ${want === 'stop' ? 'stopped' : 'started'} it at ${localLabel(tz, acted.at, opts.now)}, since the transition`
        : `${acted.by === 'stop' ? 'stopped' : 'started'} on demand at ${localLabel(tz, acted.at, opts.now)}, after the transition`;
  return decided(
    idle(
      db,
      'unchanged',
      `${ewhy}; ${what}: left as it is ${until} (enforced: false acts on transitions only)`,
    ),
  );
};

export interface ReconcilePlan {
  rows: PlannedDb[];
  /** Databases a start brings back because an override asks for it: when that override ends. */
  overrideStarts: ReadonlyMap<string, Date>;
}

/**
 * Every opted-in database (its own `nightshift:schedule`), or those of `only`, and what its schedule or
 * override asks now. A database tagged `nightshift:stage` for another stage gets no row. Pure.
 */
export const planReconcile = (
  estate: Estate,
  opts: ReconcileOptions,
  only?: ReadonlySet<string>,
): ReconcilePlan => {
  const evaluations = new Map<string, Evaluation>();
  const rows: PlannedDb[] = [];
  const overrideStarts = new Map<string, Date>();
  // An instance of a cluster follows its cluster: its own schedule tag is not read, and said so.
  for (const member of estate.instances) {
    if (member.memberOf === undefined || member.tags[SCHEDULE_TAG] === undefined) continue;
    if ((only && !only.has(member.arn)) || otherStage(opts.stage, member.tags) !== undefined) continue;
    rows.push(
      idle(
        member,
        'skipped',
        `member of cluster ${member.memberOf}: its own ${SCHEDULE_TAG} is not read — tag the cluster, which is stopped and started whole`,
      ),
    );
  }
  for (const db of candidates(estate)) {
    if (only && !only.has(db.arn)) continue;
    if (db.tags[SCHEDULE_TAG] === undefined) continue;
    if (otherStage(opts.stage, db.tags) !== undefined) continue;
    const { row, overrideUntil } = decide(db, opts, evaluations);
    rows.push(row);
    if (overrideUntil && row.steps.some((s) => s.op === 'start')) overrideStarts.set(db.arn, overrideUntil);
  }
  return { rows, overrideStarts };
};

/**
 * The databases whose start record a reconcile needs: running with STOPPED_TAG (a nightshift start since
 * the stop means its untag failed, not AWS's 7-day start), and opted in, schedule stopped now, without
 * STOPPED_TAG (whether a start ran since the stop transition decides). Pure.
 */
export const startRecordCandidates = (estate: Estate, schedules: Schedules, now: Date): string[] =>
  candidates(estate).flatMap((db) => {
    if (db.tags[STOPPED_TAG] !== undefined)
      return db.status === 'stopped' || db.status === 'stopping' ? [] : [db.arn];
    const schedule = schedules.get(db.tags[SCHEDULE_TAG] ?? '');
    if (!schedule) return [];
    try {
      return desiredState(schedule, now) === 'stopped' ? [db.arn] : [];
    } catch {
      return [];
    }
  });

/**
 * An RDS event saying a database runs again (auto-start after 7 days, or started): a database on a
 * schedule is reconciled alone; one nightshift stopped on demand (STOPPED_TAG, no schedule) is stopped
 * again unless an active override keeps it running; anything else is left as it is. Pure.
 */
export const planRestarted = (
  arn: string,
  eventId: string,
  estate: Estate,
  opts: ReconcileOptions,
): ReconcilePlan => {
  const db = candidates(estate).find((d) => d.arn === arn);
  const member = estate.instances.find((d) => d.arn === arn && d.memberOf !== undefined);
  const none = (row: PlannedDb): ReconcilePlan => ({ rows: [row], overrideStarts: new Map() });
  if (member)
    return none(
      idle(
        member,
        'unchanged',
        `${eventId}: member of cluster ${member.memberOf}: the cluster's events decide`,
      ),
    );
  if (!db) {
    const kind = arn.includes(':cluster:') ? 'cluster' : 'instance';
    return none({
      arn,
      type: TYPE[kind],
      kind,
      id: arn.split(':').at(-1) ?? arn,
      steps: [],
      hasWork: false,
      outcome: 'unchanged',
      detail: `${eventId}: not found in this account and region (deleted since?); nothing to do`,
    });
  }
  const stage = otherStage(opts.stage, db.tags);
  if (stage !== undefined)
    return none(idle(db, 'unchanged', `${eventId}: tagged for stage ${stage}: left to it`));
  if (db.tags[SCHEDULE_TAG] !== undefined) {
    const plan = planReconcile(estate, opts, new Set([arn]));
    return { ...plan, rows: plan.rows.map((r) => ({ ...r, detail: `${eventId}: ${r.detail}` })) };
  }
  const tag = db.tags[STOPPED_TAG];
  if (tag === undefined)
    return none(
      idle(db, 'unchanged', `${eventId}: not stopped by nightshift (no ${STOPPED_TAG}): left as it is`),
    );
  // RDS-EVENT-0154 / 0153 say AWS started it after 7 days; a started event (0088 / 0151) comes with every
  // start, so there the tag's age tells AWS's start from someone's.
  const auto =
    RESTARTED_EVENTS[eventId]?.done === false ||
    autoStarted(db, opts.now, opts.startedAt.get(db.arn), opts.autoStarts?.get(db.arn));
  if (!auto && db.status !== 'stopped' && db.status !== 'stopping')
    return none(
      work(
        db,
        [{ op: 'untag-stopped' }],
        `${eventId}: started by someone since nightshift stopped it (${tag}), not by AWS's 7-day start: ` +
          `left running; removes ${STOPPED_TAG}`,
      ),
    );
  const text = db.tags[OVERRIDE_TAG];
  try {
    const o = text === undefined ? undefined : decodeOverride(text);
    if (o && o.state === 'running' && overrideActive(o, opts.now))
      return none(
        idle(
          db,
          'unchanged',
          `${eventId}: an override keeps it running until ${iso(o.until)}: left as it is`,
        ),
      );
  } catch {
    // An unreadable override asks for nothing: nightshift stopped it, so it stays stopped.
  }
  return none(planStop(db, opts, `${eventId}: nightshift stopped it (${tag}) and nothing wants it running`));
};

// ---------------------------------------------------------------------------------------------------
// Start timeout: a database nightshift started that is not ready long after the start.

/**
 * How long after nightshift's start a database that is not ready is still counted as that start's
 * laggard. The start record is kept 60 days and nothing records "ready since"; a start takes minutes,
 * so past this horizon a database that is not ready (started by hand, by AWS after 7 days, or in a
 * maintenance) is no longer blamed on nightshift's start.
 */
export const START_WATCH_MS = 24 * 3_600_000;

export interface StartWatch {
  /** The start record of each database that `startWatchCandidates` named, by ARN. */
  records: ReadonlyMap<string, StartRecord>;
  /** ENVIRONMENT_START_TIMEOUT_MINUTES in ms. */
  timeoutMs: number;
  now: Date;
}

const readiness = (db: Database) =>
  databaseReady({
    id: db.id,
    kind: db.kind,
    status: db.status,
    ...(db.writerStatus !== undefined && { writerStatus: db.writerStatus }),
  });

/**
 * A state that is a start's lag: `starting`, or a state RDS leaves a database in when it cannot start it
 * (`incompatible-network`, `inaccessible-encryption-credentials`, `storage-full`, `failed`, …). A state a
 * database passes through for other reasons (`backing-up`, `modifying`, `maintenance`, …: PASSING) is
 * not: a database started at 07:30 that is `backing-up` at 19:00 came up long ago.
 */
const lagging = (status: string | undefined) =>
  status !== undefined &&
  (status === 'starting' ||
    (!PASSING.has(status) && status !== 'available' && status !== 'stopped' && status !== 'stopping'));

/** Not ready (shared/environment.ts databaseReady) because its start lags: it, or an Aurora cluster's writer. */
const lagsAfterStart = (db: Database) =>
  !readiness(db) && (lagging(db.status) || (db.kind === 'cluster' && lagging(db.writerStatus)));

const stateOf = (db: Database) =>
  db.kind === 'instance' ? db.status : `cluster ${db.status}, writer ${db.writerStatus ?? 'not found'}`;

/**
 * The databases whose start record the start timeout needs: not ready (an instance not `available`; an
 * Aurora cluster or its writer not `available`) because a start lags (`lagging`), and not stopped with
 * nightshift's tag. A database stopped or stopping again after a start is someone's act, not a lag.
 */
export const startWatchCandidates = (estate: Estate): string[] =>
  candidates(estate)
    .filter((db) => db.tags[STOPPED_TAG] === undefined && lagsAfterStart(db))
    .map((db) => db.arn);

const minutes = (ms: number) => Math.floor(ms / 60_000);

/**
 * A database nightshift started (its start record) that is still not ready: `waiting` until
 * ENVIRONMENT_START_TIMEOUT_MINUTES after the start, then `failed` (someone is paged), naming how long it
 * has been starting and its state. Only rows that change nothing are rewritten (a row with work, a
 * skipped or failed row is kept as it is). The services of its environment keep waiting for it either
 * way (ecs-scheduler's start gate). Pure.
 */
export const watchStarts = (rows: readonly PlannedDb[], estate: Estate, watch: StartWatch): PlannedDb[] => {
  const byArn = new Map(candidates(estate).map((db) => [db.arn, db]));
  return rows.map((row) => {
    if (row.hasWork || row.outcome !== 'unchanged') return row;
    const db = byArn.get(row.arn);
    const record = watch.records.get(row.arn);
    if (!db || !record || db.tags[STOPPED_TAG] !== undefined || !lagsAfterStart(db)) return row;
    const elapsed = watch.now.getTime() - record.at.getTime();
    if (elapsed < 0 || elapsed > START_WATCH_MS) return row;
    const since = iso(record.at);
    const limit = minutes(watch.timeoutMs);
    if (elapsed > watch.timeoutMs) {
      const failed: PlannedDb = {
        ...row,
        outcome: 'failed',
        detail:
          `${row.detail}; not ready ${minutes(elapsed)} min after nightshift started it (at ${since}): ${stateOf(db)} — ` +
          `more than ENVIRONMENT_START_TIMEOUT_MINUTES (${limit}); the services of its environment keep waiting: ` +
          'look at the database (its RDS events, the console)',
      };
      delete failed.later;
      return failed;
    }
    return {
      ...row,
      later: 'waiting',
      detail:
        `${row.detail}; ${waitingFor([{ name: db.id, state: stateOf(db), since }])} ` +
        `(started by nightshift ${minutes(elapsed)} min ago; failed after ${limit} min, ENVIRONMENT_START_TIMEOUT_MINUTES)`,
    };
  });
};
