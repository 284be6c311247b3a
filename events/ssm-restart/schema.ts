import * as z from 'zod/mini';
import type { Infer } from '#shared/zod.ts';
import { parseInput } from '#shared/input.ts';
import { PLAN_DIGEST } from '#shared/plan-digest.ts';
import { isEventBridgeEvent } from '#events/aws.rds/schema.ts';
import {
  AlarmLambdaAction,
  AlarmStateChangeEvent,
  fromLambdaAction,
  isAlarmLambdaAction,
} from '#events/aws.cloudwatch/schema.ts';

/**
 * Container and systemd unit names. They end up in a shell command, so they are the only user text
 * that does, and only in this shape: no spaces, quotes, `;`, `$`, `/` or a leading `-` or `.`.
 * Docker's own container names are `[a-zA-Z0-9][a-zA-Z0-9_.-]+`; systemd adds `@` for template units.
 */
export const RESTART_NAME = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,127}$/;
export const RESTART_NAME_MESSAGE =
  'expected 1 to 128 letters, digits, "_", ".", "@" or "-", starting with a letter or digit';

export const INSTANCE_ID = /^i-[0-9a-f]{8,17}$/;
// ECS cluster names or ARNs, and service names or ARNs: letters, digits, hyphens and underscores.
const CLUSTER = /^(arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:cluster\/)?[A-Za-z0-9_-]{1,255}$/;
const SERVICE =
  /^(arn:aws[a-z-]*:ecs:[a-z0-9-]+:\d{12}:service\/([A-Za-z0-9_-]{1,255}\/)?)?[A-Za-z0-9_-]{1,255}$/;

const Name = z.string().check(z.regex(RESTART_NAME, RESTART_NAME_MESSAGE));

const Targets = z
  .strictObject({
    instanceIds: z.optional(
      z
        .array(
          z.string().check(z.regex(INSTANCE_ID, 'expected an EC2 instance id such as i-0a1b2c3d4e5f60718')),
        )
        .check(z.minLength(1, 'name at least one instance'), z.maxLength(1000)),
    ),
    tags: z.optional(
      z
        .record(
          z.string().check(z.minLength(1, 'tag keys may not be empty'), z.maxLength(128)),
          z.string().check(z.maxLength(256)),
        )
        .check(
          z.refine((tags) => Object.keys(tags).length > 0, 'give at least one tag'),
          // An instance has at most 50 tags, and EC2 takes at most 200 filter values a call.
          z.refine((tags) => Object.keys(tags).length <= 50, 'give at most 50 tags: an instance has no more'),
        ),
    ),
  })
  .check(
    z.refine((t) => (t.instanceIds === undefined) !== (t.tags === undefined), {
      message: 'give exactly one of instanceIds or tags',
      path: ['instanceIds'],
    }),
  );

/**
 * An on-demand restart: a container or systemd unit on instances named by id or by tags, or a
 * redeploy of one ECS service. Unknown fields are refused.
 */
export const RestartAction = z
  .strictObject({
    action: z.literal('restart'),
    targets: z.optional(Targets),
    container: z.optional(Name),
    unit: z.optional(Name),
    ecsService: z.optional(
      z.strictObject({
        cluster: z.string().check(z.regex(CLUSTER, 'expected an ECS cluster name or ARN')),
        service: z.string().check(z.regex(SERVICE, 'expected an ECS service name or ARN')),
      }),
    ),
    dryRun: z.optional(z.boolean()),
    /** The digest of the dry run a person confirmed: the apply changes nothing if its plan differs. */
    planDigest: z.optional(z.string().check(z.regex(PLAN_DIGEST, 'expected the planDigest of a dry run'))),
  })
  .check(
    z.refine((i) => (i.targets === undefined) !== (i.ecsService === undefined), {
      message: 'give targets (with container or unit) or ecsService, exactly one of them',
      path: ['targets'],
    }),
    z.refine((i) => i.targets === undefined || (i.container === undefined) !== (i.unit === undefined), {
      message: 'give exactly one of container or unit',
      path: ['container'],
    }),
    z.refine((i) => i.ecsService === undefined || (i.container === undefined && i.unit === undefined), {
      message: 'an ECS service is redeployed as a whole: leave container and unit out',
      path: ['container'],
    }),
  );

export type RestartAction = Infer<typeof RestartAction>;
export type RestartInput =
  | RestartAction
  | {
      action: 'alarm';
      event: AlarmStateChangeEvent;
      /** EventBridge's alarm state change event, or the alarm's own Lambda action. */
      via: 'eventbridge' | 'lambda-action';
    };

/**
 * A CloudWatch alarm state change (from EventBridge, or from the alarm's Lambda action, which names the
 * same things in other fields), or an on-demand restart.
 */
export const parseRestartInput = (event: unknown): RestartInput => {
  if (isEventBridgeEvent(event)) {
    return { action: 'alarm', event: parseInput(AlarmStateChangeEvent, event), via: 'eventbridge' };
  }
  if (isAlarmLambdaAction(event)) {
    return {
      action: 'alarm',
      event: fromLambdaAction(parseInput(AlarmLambdaAction, event)),
      via: 'lambda-action',
    };
  }
  return parseInput(RestartAction, event);
};
