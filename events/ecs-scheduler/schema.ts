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
    tags: z.optional(
      z
        .record(
          z.string().check(z.minLength(1, 'tag keys may not be empty'), z.maxLength(128)),
          z.string().check(z.maxLength(256)),
        )
        .check(z.refine((tags) => Object.keys(tags).length > 0, 'give at least one tag, or leave tags out')),
    ),
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
    z.refine((input) => input.clusters !== undefined || input.tags !== undefined, {
      message: 'clusters or tags is required: an unscoped run over the whole account is refused',
      path: ['clusters'],
    }),
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

/** Everything the ecs-scheduler accepts: an explicit stop or start, or a reconcile. */
export const EcsSchedulerInput = z.discriminatedUnion('action', [SchedulerInput, ReconcileInput]);

export type EcsSchedulerInput = Infer<typeof EcsSchedulerInput>;
