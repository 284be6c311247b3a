import * as z from 'zod/mini';
import type { Infer } from '#shared/zod.ts';
import { PLAN_DIGEST } from '#shared/plan-digest.ts';

// Cluster and service names: up to 255 letters, digits, hyphens and underscores, or a full ARN.
const CLUSTER = /^(arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:cluster\/)?[A-Za-z0-9_-]{1,255}$/;
const SERVICE =
  /^(arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:service\/([A-Za-z0-9_-]{1,255}\/)?)?[A-Za-z0-9_-]{1,255}$/;

/**
 * What the ecs-scheduler accepts, from an EventBridge Scheduler schedule's input or an on-demand
 * invoke. At least one of `clusters` or `tags` is required: an unscoped stop of a whole account is refused.
 */
export const SchedulerInput = z
  .strictObject({
    action: z.enum(['stop', 'start']),
    clusters: z.optional(
      z
        .array(z.string().check(z.regex(CLUSTER, 'expected a cluster name or ARN')))
        .check(
          z.minLength(1, 'name at least one cluster, or leave clusters out and scope by tags'),
          z.maxLength(100),
        ),
    ),
    services: z.optional(
      z
        .array(z.string().check(z.regex(SERVICE, 'expected a service name or ARN')))
        .check(z.minLength(1, 'name at least one service, or leave services out'), z.maxLength(1000)),
    ),
    /**
     * Auto Scaling groups that are not ECS capacity providers, by name: parked at 0/0/0 and restored
     * exactly, on their own.
     */
    groups: z.optional(
      z
        .array(
          z.string().check(
            // Group names are 1-255 printable characters (no line breaks or control characters).
            z.regex(/^[^\p{Cc}]{1,255}$/u, 'expected an Auto Scaling group name (1-255 characters)'),
          ),
        )
        .check(z.minLength(1, 'name at least one group, or leave groups out'), z.maxLength(100)),
    ),
    tags: z.optional(
      z
        .record(
          z.string().check(z.minLength(1, 'tag keys may not be empty'), z.maxLength(128)),
          z.string().check(z.maxLength(256)),
        )
        .check(z.refine((tags) => Object.keys(tags).length > 0, 'give at least one tag, or leave tags out')),
    ),
    /** Starts without waiting for the environment order (nightshift:environment: databases, then groups). */
    force: z.optional(z.boolean()),
    dryRun: z.optional(z.boolean()),
    /**
     * The `planDigest` of the dry run a person confirmed (the CLI sends it with the apply): the run
     * changes nothing when its own plan differs.
     */
    planDigest: z.optional(
      z.string().check(z.regex(PLAN_DIGEST, 'expected the hex sha256 planDigest of a dry run')),
    ),
  })
  .check(
    z.refine(
      (input) => input.clusters !== undefined || input.tags !== undefined || input.groups !== undefined,
      {
        message: 'clusters, groups or tags is required: an unscoped run over the whole account is refused',
        path: ['clusters'],
      },
    ),
    z.refine(
      (input) =>
        input.groups === undefined ||
        input.services === undefined ||
        input.clusters !== undefined ||
        input.tags !== undefined,
      {
        message: 'services narrow clusters or tags down: name the clusters too',
        path: ['services'],
      },
    ),
  );

export type SchedulerInput = Infer<typeof SchedulerInput>;

/**
 * `{"action": "reconcile"}`: every service and cluster that opted in with the tag
 * `nightshift:schedule=<name>` is brought to its schedule's state (infra/schedules.yml). No scope
 * fields: the tag is the scope.
 */
export const ReconcileInput = z.strictObject({
  action: z.literal('reconcile'),
  dryRun: z.optional(z.boolean()),
  planDigest: z.optional(
    z.string().check(z.regex(PLAN_DIGEST, 'expected the hex sha256 planDigest of a dry run')),
  ),
});

export type ReconcileInput = Infer<typeof ReconcileInput>;

// At least one minute: `0m` would end the override as it is written.
const DURATION = /^0*[1-9]\d{0,5}[mhd]$/;
const UNTIL = /^(([01]\d|2[0-3]):[0-5]\d|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))$/;

/**
 * `nightshift wake|sleep <target>`: records the override `nightshift:override` on each target (a
 * cluster named whole, services, or standalone Auto Scaling groups), then reconciles them at once. `for` (`3h`) or `until` (`22:00` in
 * the zone of the target's schedule, or a full ISO time with its offset); `cancel` ends an override.
 * `by` names who asks (the CLI sends the caller's STS identity).
 */
export const OverrideInput = z
  .strictObject({
    action: z.enum(['wake', 'sleep']),
    clusters: SchedulerInput.shape.clusters,
    services: SchedulerInput.shape.services,
    /** Auto Scaling groups that are not ECS capacity providers, by name: the override is written on each. */
    groups: SchedulerInput.shape.groups,
    tags: SchedulerInput.shape.tags,
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
    /** Starts without waiting for the environment order (nightshift:environment: databases, then groups). */
    force: z.optional(z.boolean()),
    by: z.string().check(z.minLength(1, 'name who asks for the override'), z.maxLength(200)),
    reason: z.optional(z.string().check(z.maxLength(1000))),
    dryRun: z.optional(z.boolean()),
    planDigest: z.optional(
      z.string().check(z.regex(PLAN_DIGEST, 'expected the hex sha256 planDigest of a dry run')),
    ),
  })
  .check(
    z.refine(
      (input) => input.clusters !== undefined || input.tags !== undefined || input.groups !== undefined,
      {
        message:
          'clusters, groups or tags is required (services narrow clusters down), as for stop and start',
        path: ['clusters'],
      },
    ),
    z.refine(
      (input) => input.services === undefined || input.clusters !== undefined || input.tags !== undefined,
      {
        message: 'services narrow clusters or tags down: name the clusters too',
        path: ['services'],
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

export type OverrideInput = Infer<typeof OverrideInput>;

/** Everything the ecs-scheduler accepts: an explicit stop or start, a reconcile, or an override. */
export const EcsSchedulerInput = z.discriminatedUnion('action', [
  SchedulerInput,
  ReconcileInput,
  OverrideInput,
]);

export type EcsSchedulerInput = Infer<typeof EcsSchedulerInput>;
