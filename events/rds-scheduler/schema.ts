import * as z from 'zod/mini';
import type { Infer } from '#shared/zod.ts';
import { PLAN_DIGEST } from '#shared/plan-digest.ts';
import { parseInput } from '#shared/input.ts';

// DB instance and cluster identifiers: 1-63 letters, digits and hyphens, starting with a letter
// (CreateDBInstance / CreateDBCluster), or the full ARN (`arn:aws:rds:<region>:<account>:db:<id>`,
// `…:cluster:<id>`).
const INSTANCE = /^(arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:db:)?[A-Za-z][A-Za-z0-9-]{0,62}$/;
const CLUSTER = /^(arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:cluster:)?[A-Za-z][A-Za-z0-9-]{0,62}$/;

const digest = z.optional(
  z.string().check(z.regex(PLAN_DIGEST, 'expected the hex sha256 planDigest of a dry run')),
);

/**
 * What rds-scheduler accepts, from an EventBridge Scheduler schedule's input or an on-demand invoke.
 * `stop` and `start` need `instances`, `clusters` or `tags`: an unscoped stop of a whole account is
 * refused. `reconcile` takes no scope: the tag `nightshift:schedule` is the scope. Public contract.
 */
export const RdsActionInput = z
  .strictObject({
    action: z.enum(['stop', 'start', 'reconcile']),
    instances: z.optional(
      z
        .array(z.string().check(z.regex(INSTANCE, 'expected a DB instance identifier or ARN')))
        .check(z.minLength(1, 'name at least one DB instance, or leave instances out'), z.maxLength(1000)),
    ),
    clusters: z.optional(
      z
        .array(z.string().check(z.regex(CLUSTER, 'expected a DB cluster identifier or ARN')))
        .check(z.minLength(1, 'name at least one DB cluster, or leave clusters out'), z.maxLength(1000)),
    ),
    tags: z.optional(
      z
        .record(
          z.string().check(z.minLength(1, 'tag keys may not be empty'), z.maxLength(128)),
          z.string().check(z.maxLength(256)),
        )
        .check(z.refine((tags) => Object.keys(tags).length > 0, 'give at least one tag, or leave tags out')),
    ),
    /** Skips the environment gate (a database stops before its services are at rest). */
    force: z.optional(z.boolean()),
    dryRun: z.optional(z.boolean()),
    planDigest: digest,
  })
  .check(
    z.refine(
      (input) =>
        input.action === 'reconcile' ||
        input.instances !== undefined ||
        input.clusters !== undefined ||
        input.tags !== undefined,
      {
        message: 'instances, clusters or tags is required: an unscoped run over the whole account is refused',
        path: ['instances'],
      },
    ),
    z.refine(
      (input) =>
        input.action !== 'reconcile' ||
        (input.instances === undefined && input.clusters === undefined && input.tags === undefined),
      {
        message: 'reconcile takes no scope: the tag nightshift:schedule on each database is its scope',
        path: ['instances'],
      },
    ),
  );

export type RdsActionInput = Infer<typeof RdsActionInput>;

// At least one minute: `0m` would end the override as it is written (the same as ecs-scheduler's).
const DURATION = /^0*[1-9]\d{0,5}[mhd]$/;
const UNTIL = /^(([01]\d|2[0-3]):[0-5]\d|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))$/;

/**
 * `nightshift wake|sleep --db <id> --db-cluster <id>`: records the override `nightshift:override` on
 * each DB instance or cluster named (or whose own tags match `tags`), then reconciles them at once.
 * `for` (`3h`) or `until` (`22:00` in the zone of the database's schedule, or a full ISO time with its
 * offset); `cancel` ends an override. `by` names who asks (the CLI sends the caller's STS identity).
 * The same fields and refusals as ecs-scheduler's override. Public contract.
 */
export const RdsOverrideInput = z
  .strictObject({
    action: z.enum(['wake', 'sleep']),
    instances: RdsActionInput.shape.instances,
    clusters: RdsActionInput.shape.clusters,
    tags: RdsActionInput.shape.tags,
    for: z.optional(z.string().check(z.regex(DURATION, 'expected a duration such as 30m, 3h or 1d'))),
    until: z.optional(
      z
        .string()
        .check(
          z.regex(
            UNTIL,
            'expected a clock time such as 22:00, or a full time such as 2026-11-29T22:00:00+01:00',
          ),
        ),
    ),
    cancel: z.optional(z.boolean()),
    /** A sleep stops without waiting for the environment's services and groups to rest. */
    force: z.optional(z.boolean()),
    by: z.string().check(z.minLength(1, 'name who asks for the override'), z.maxLength(200)),
    reason: z.optional(z.string().check(z.maxLength(1000))),
    dryRun: z.optional(z.boolean()),
    planDigest: digest,
  })
  .check(
    z.refine(
      (input) => input.instances !== undefined || input.clusters !== undefined || input.tags !== undefined,
      {
        message: 'instances, clusters or tags is required, as for stop and start',
        path: ['instances'],
      },
    ),
    z.refine((input) => !(input.for !== undefined && input.until !== undefined), {
      message: 'give for or until, not both',
      path: ['until'],
    }),
    z.refine((input) => !(input.cancel === true && (input.for !== undefined || input.until !== undefined)), {
      message: 'cancel ends an override now: leave for and until out',
      path: ['cancel'],
    }),
    z.refine(
      (input) =>
        input.action !== 'wake' ||
        input.cancel === true ||
        input.for !== undefined ||
        input.until !== undefined,
      {
        message: 'wake needs for (3h) or until (22:00): an override always ends',
        path: ['for'],
      },
    ),
  );

export type RdsOverrideInput = Infer<typeof RdsOverrideInput>;

/** Everything rds-scheduler accepts on demand: stop, start, reconcile, or an override (wake, sleep). */
export const RdsSchedulerInput = z.discriminatedUnion('action', [RdsActionInput, RdsOverrideInput]);
export type RdsSchedulerInput = Infer<typeof RdsSchedulerInput>;

/**
 * RDS events that mean "a stopped database is running again": AWS starts a database stopped for 7 days
 * (RDS-EVENT-0154 for an instance, RDS-EVENT-0153 for a cluster: "is being started due to it exceeding
 * the maximum allowed time being stopped"), and says when it is up (RDS-EVENT-0088 "DB instance
 * started", RDS-EVENT-0151 "DB cluster started"). While it is `starting` it cannot be stopped, so the
 * start-completed events are the ones that stop it again; the auto-start ones are reported `waiting`.
 * Source: Amazon RDS and Aurora user guides, "Amazon RDS event categories and event messages".
 */
export const RESTARTED_EVENTS: Record<string, { kind: 'instance' | 'cluster'; done: boolean }> = {
  'RDS-EVENT-0154': { kind: 'instance', done: false },
  'RDS-EVENT-0088': { kind: 'instance', done: true },
  'RDS-EVENT-0153': { kind: 'cluster', done: false },
  'RDS-EVENT-0151': { kind: 'cluster', done: true },
};

const DB_ARN = /^arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:(db|cluster):[A-Za-z][A-Za-z0-9-]{0,62}$/;

/** EventBridge `RDS DB Instance Event` / `RDS DB Cluster Event`. The envelope is not strict. */
export const RdsDatabaseEvent = z.looseObject({
  source: z.literal('aws.rds'),
  'detail-type': z.enum(['RDS DB Instance Event', 'RDS DB Cluster Event']),
  id: z.optional(z.string()),
  detail: z.looseObject({
    EventID: z.optional(z.string()),
    SourceArn: z.string().check(z.regex(DB_ARN, 'expected the ARN of a DB instance or cluster')),
    SourceIdentifier: z.optional(z.string()),
    Message: z.optional(z.string()),
  }),
});

export type RdsDatabaseEvent = Infer<typeof RdsDatabaseEvent>;

/** Everything the function accepts. */
export type RdsSchedulerEvent = RdsSchedulerInput | RdsDatabaseEvent;

export const isDatabaseEvent = (e: RdsSchedulerEvent): e is RdsDatabaseEvent => 'detail-type' in e;

/**
 * An RDS event (it has `detail-type`) against its schema, anything else against the input contract, so
 * the error of a mistyped input names its own field rather than a union's alternatives.
 */
export const parseRdsSchedulerEvent = (event: unknown): RdsSchedulerEvent =>
  typeof event === 'object' && event !== null && 'detail-type' in event
    ? parseInput(RdsDatabaseEvent, event)
    : parseInput(RdsSchedulerInput, event);
