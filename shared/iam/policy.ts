/**
 * The vocabulary of every function's permissions (functions/<fn>/permissions.ts): IAM statements as
 * CloudFormation writes them, and the two places a function acts from.
 *
 * - `HUB`: the function's own role in the hub stack (serverless.yml). It acts in the stack's region and
 *   account: ARNs name `${AWS::Region}`, exactly as the roles did before the fleet.
 * - `SPOKE`: `nightshift-<stage>-<fn>-spoke` in a member account (infra/spoke.yml), deployed once per
 *   account and assumed for a target in any fleet region. Its ARNs name region `*`; the region of the run
 *   is the session tag `nightshift-region` the hub passes, and scripts/iam.ts pins every regional
 *   statement to it (aws:RequestedRegion). Where a statement's meaning depends on "the region this run acts
 *   on" (rds-snapshot-copy's markers), it reads `scope.region`, which is that session tag in the spoke.
 *
 * scripts/iam.ts writes both from the same definitions; see its header for the region decision.
 */
import { REGION_SESSION_TAG } from '../fleet/target.ts';

/** A value in a CloudFormation template: a literal, or an intrinsic CloudFormation resolves. */
export type CfnValue = string | { 'Fn::Sub': string } | { Ref: string } | { 'Fn::GetAtt': [string, string] };

export type Condition = Record<string, Record<string, unknown>>;

export interface Statement {
  Sid: string;
  Effect: 'Allow' | 'Deny';
  Action: string | string[];
  Resource: CfnValue | CfnValue[];
  Condition?: Condition;
}

/** A statement deployed only when a template condition holds (rds-snapshot-copy's KMS keys). */
export interface ConditionalStatement {
  'Fn::If': [string, Statement, { Ref: 'AWS::NoValue' }];
}

export type PolicyEntry = Statement | ConditionalStatement;

export const isConditional = (entry: PolicyEntry): entry is ConditionalStatement => 'Fn::If' in entry;

/** The session tag the hub passes when it assumes a spoke role: the region of that run. */
export const REGION_TAG = REGION_SESSION_TAG;
/** The session's region as IAM reads it, a policy variable (never inside a file osls reads: `${aws:…}` is one of its variable sources). */
export const SESSION_REGION = `\${aws:PrincipalTag/${REGION_TAG}}`;

export interface Scope {
  kind: 'hub' | 'spoke';
  /** An ARN in the region the run acts on and this account; `account: false` for ARNs without one. */
  arn: (service: string, resource: string, options?: { account: false }) => CfnValue;
  /** An ARN in any region of this account (rds-snapshot-copy's destinations). */
  anyRegionArn: (service: string, resource: string) => CfnValue;
  /** The region the run acts on, as a condition value. */
  region: CfnValue;
  /** `template` with `{region}` replaced by the region the run acts on, as a condition value. */
  inRegion: (template: string) => CfnValue;
}

const sub = (text: string): CfnValue => ({ 'Fn::Sub': text });
const arnText = (service: string, region: string, resource: string, account = true) =>
  `arn:\${AWS::Partition}:${service}:${region}:${account ? '${AWS::AccountId}' : ''}:${resource}`;

export const HUB: Scope = {
  kind: 'hub',
  arn: (service, resource, options) =>
    sub(arnText(service, '${AWS::Region}', resource, options?.account !== false)),
  anyRegionArn: (service, resource) => sub(arnText(service, '*', resource)),
  region: { Ref: 'AWS::Region' },
  inRegion: (template) => sub(template.replaceAll('{region}', '${AWS::Region}')),
};

export const SPOKE: Scope = {
  kind: 'spoke',
  arn: (service, resource, options) => sub(arnText(service, '*', resource, options?.account !== false)),
  anyRegionArn: (service, resource) => sub(arnText(service, '*', resource)),
  region: SESSION_REGION,
  // In Fn::Sub, `${!name}` is the literal `${name}`: IAM then resolves the policy variable.
  inRegion: (template) => sub(template.replaceAll('{region}', `\${!aws:PrincipalTag/${REGION_TAG}}`)),
};

const EVERY_REGION = new WeakSet<Statement>();

/**
 * Marks a statement that acts beyond the region of the run (rds-snapshot-copy copies into and prunes in
 * its destination regions): the spoke does not pin it to the session's region. Every other Allow
 * statement of a spoke is pinned.
 */
export const inEveryRegion = (statement: Statement): Statement => {
  EVERY_REGION.add(statement);
  return statement;
};

export const actsInEveryRegion = (statement: Statement): boolean => EVERY_REGION.has(statement);

/** Tag values the default protection refuses (shared/tags.ts DEFAULT_PROTECTED_TAGS), for IAM denies. */
export const PRODUCTION_VALUES = ['prod', 'production', 'live'];
export const PROTECTED_TAG_KEYS = ['env', 'environment', 'stage'] as const;

/** One function's permissions: what it needs where it acts, and what only its hub role needs. */
export interface FunctionPermissions {
  /** The statements for the account and region acted on (hub role and spoke role alike). */
  estate: (scope: Scope) => PolicyEntry[];
  /** The statements only the hub role has, besides the run statements every function gets. */
  hub?: PolicyEntry[];
}
