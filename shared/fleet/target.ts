/**
 * The fleet's contract (issue 11): which account and region a run acts in, which run of the fleet it
 * belongs to, and the names of the roles it uses there. Public contract: the `target` and `fleet` fields
 * every function accepts beside its own input, and the role names `nightshift-<stage>-<function>` (hub)
 * and `nightshift-<stage>-<function>-spoke` (each spoke account, from infra/spoke.yml).
 */
import '../zod.ts';
import * as z from 'zod/mini';
import type { Infer } from '../zod.ts';

/** The functions a fleet can run, by their folder under functions/. */
export const FLEET_FUNCTIONS = [
  'ecs-scheduler',
  'rds-scheduler',
  'rds-snapshot-copy',
  'snapshot-tags',
  'instance-rotation',
  'ssm-restart',
] as const;
export type FleetFunction = (typeof FLEET_FUNCTIONS)[number];

export const ACCOUNT_ID = /^\d{12}$/;
/** Commercial, GovCloud and China regions: `eu-central-1`, `us-gov-west-1`, `cn-north-1`. */
export const REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;

/** `"target": {"account", "region"}` in any function's event: act there, through the spoke role. */
export const Target = z.strictObject({
  account: z.string().check(z.regex(ACCOUNT_ID, 'expected a 12-digit AWS account id')),
  region: z.string().check(z.regex(REGION, 'expected an AWS region such as eu-central-1')),
});
export type Target = Infer<typeof Target>;

/**
 * A run id: the Step Functions execution name (at most 80 characters of `[A-Za-z0-9_-]`) and the key
 * of the run's rows in the hub's table.
 */
export const RUN_ID = /^[A-Za-z0-9_-]{1,80}$/;

/** `"fleet": {"run"}`: this invocation is one target of that fleet run; it records its row there. */
export const FleetMarker = z.strictObject({
  run: z.string().check(z.regex(RUN_ID, 'expected a run id of letters, digits, - and _ (at most 80)')),
});
export type FleetMarker = Infer<typeof FleetMarker>;

/** The hub's role of a function: fixed, so spoke trust policies can name it. */
export const hubRoleName = (stage: string, fn: string): string => `nightshift-${stage}-${fn}`;

/** The role a function assumes in a spoke account (infra/spoke.yml). */
export const spokeRoleName = (stage: string, fn: string): string => `nightshift-${stage}-${fn}-spoke`;

export const spokeRoleArn = (partition: string, account: string, stage: string, fn: string): string =>
  `arn:${partition}:iam::${account}:role/${spokeRoleName(stage, fn)}`;

/** The session tag that tells a spoke role's policy which region this session acts in. */
export const REGION_SESSION_TAG = 'nightshift-region';

/**
 * The role session name, which CloudTrail shows in the spoke account: names the run. STS allows 2 to 64
 * characters of `[\w+=,.@-]` (AssumeRole API reference, RoleSessionName).
 */
export const sessionName = (run: string): string =>
  `nightshift-${run}`.replace(/[^\w+=,.@-]/g, '-').slice(0, 64);

/** The partition of a region: `aws`, `aws-us-gov` or `aws-cn`. */
export const partitionOf = (region: string): string =>
  region.startsWith('us-gov-') ? 'aws-us-gov' : region.startsWith('cn-') ? 'aws-cn' : 'aws';
