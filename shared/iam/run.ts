/**
 * The statements every function's hub role has and no spoke role has: its log group, the on-failure
 * queue, the ops topic, the stage's lease table (shared/lease.ts, shared/carryover.ts), and what a fleet
 * run needs from the hub (shared/handler.ts): assume its own spoke role, read the target's alias and
 * Organizations name for the allowlist, and read its own reserved concurrency (the kill switch).
 *
 * `${self:service}` and `${sls:stage}` are osls variables, resolved when the hub stack is packaged.
 */
import { spokeRoleName } from '../fleet/target.ts';
import type { Statement } from './policy.ts';

/** The osls variable of the stage, resolved when the hub stack is packaged. */
export const STAGE_VARIABLE = '${sls:stage}';

/** What withOps needs in the hub for every run: logs, the on-failure queue, summaries, run state. */
export const runStatements = (fn: string): Statement[] => [
  {
    Sid: 'Logs',
    Effect: 'Allow',
    Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    Resource: {
      'Fn::Sub': `arn:\${AWS::Partition}:logs:\${AWS::Region}:\${AWS::AccountId}:log-group:/aws/lambda/\${self:service}-\${sls:stage}-${fn}:*`,
    },
  },
  {
    Sid: 'OnFailureDestination',
    Effect: 'Allow',
    Action: 'sqs:SendMessage',
    Resource: { 'Fn::GetAtt': ['OnFailureQueue', 'Arn'] },
  },
  // Run summaries (shared/summary.ts), to the stack's ops topic only.
  { Sid: 'RunSummaries', Effect: 'Allow', Action: 'sns:Publish', Resource: { Ref: 'OpsTopic' } },
  // Leases, start records and the work a run left undone (shared/lease.ts, shared/started.ts,
  // shared/carryover.ts): this stage's table.
  {
    Sid: 'RunState',
    Effect: 'Allow',
    Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem'],
    Resource: { 'Fn::GetAtt': ['LeaseTable', 'Arn'] },
  },
];

/**
 * What a run with a `target` needs from the hub role (shared/handler.ts, shared/fleet/*):
 * - AssumeSpokeRole: its own function's spoke role in any account, with the session tag
 *   nightshift-region (sts:TagSession) that scopes the spoke to the target's region;
 * - ReadAccountAlias: the allowlist reads the alias of the hub's own account with this role (a target in
 *   the hub account uses it); ListAccountAliases has no resource type (Service Authorization Reference,
 *   IAM), so Resource "*";
 * - ReadAccountName: organizations:DescribeAccount is authorised on the account's ARN,
 *   arn:…:organizations::<management account>:account/o-<org>/<account> (Service Authorization
 *   Reference, AWS Organizations); the hub may be the management or a delegated administrator account,
 *   so any management account, any organisation;
 * - KillSwitch: its own reserved concurrency (0 = the kill switch is engaged), read before any mutating
 *   call of a fleet iteration.
 */
export const fleetStatements = (fn: string): Statement[] => [
  {
    Sid: 'AssumeSpokeRole',
    Effect: 'Allow',
    Action: ['sts:AssumeRole', 'sts:TagSession'],
    Resource: { 'Fn::Sub': `arn:\${AWS::Partition}:iam::*:role/${spokeRoleName(STAGE_VARIABLE, fn)}` },
  },
  { Sid: 'ReadAccountAlias', Effect: 'Allow', Action: 'iam:ListAccountAliases', Resource: '*' },
  {
    Sid: 'ReadAccountName',
    Effect: 'Allow',
    Action: 'organizations:DescribeAccount',
    Resource: { 'Fn::Sub': 'arn:${AWS::Partition}:organizations::*:account/o-*/*' },
  },
  {
    Sid: 'KillSwitch',
    Effect: 'Allow',
    Action: 'lambda:GetFunctionConcurrency',
    Resource: {
      'Fn::Sub': `arn:\${AWS::Partition}:lambda:\${AWS::Region}:\${AWS::AccountId}:function:\${self:service}-\${sls:stage}-${fn}`,
    },
  },
];

/** The allowlist reads the target account's alias through the spoke role (shared/fleet/allowlist). */
export const ALIAS_STATEMENT: Statement = {
  Sid: 'ReadAccountAlias',
  Effect: 'Allow',
  Action: 'iam:ListAccountAliases',
  Resource: '*',
};

/** Services only the hub role acts on: a spoke role never has them. */
export const HUB_ONLY_SERVICES = ['logs', 'sqs', 'sns', 'dynamodb', 'sts', 'organizations', 'lambda'];
