/**
 * Writes every function's IAM roles from the one definition of its permissions
 * (functions/<fn>/permissions.ts): the hub role, infra/generated/<fn>-role.yml (included by
 * serverless.yml), and the spoke template, infra/spoke.yml (deployed by a service-managed StackSet, one
 * region per account). Both are checked in, plain YAML: cfn-lint, the StackSet and the CLI read them
 * without a build; test/meta/iam.test.ts fails when they differ from what this script writes.
 * `npm run iam` (and `npm run build`) runs it.
 *
 * Regions, decided here:
 * - A spoke role is created once per account (IAM is global) and acts in every fleet region, so its ARNs
 *   cannot name `${AWS::Region}`. The hub passes the session tag `nightshift-region=<target region>` when
 *   it assumes the role, and every regional Allow statement of the spoke carries `StringEquals
 *   aws:RequestedRegion: ${aws:PrincipalTag/nightshift-region}` with region `*` in its ARNs (the variable
 *   in the region field of an ARN makes cfn-lint warn W1031; in a condition value it lints clean). A
 *   session is therefore the hub role's twin for one region: what the hub role may do in `${AWS::Region}`,
 *   the session may do in its tagged region. `DenyWithoutSessionRegion` denies everything to a session
 *   without the tag, so no statement is ever evaluated with the variable missing, and the trust policy
 *   lets the hub tag nothing but that key.
 * - rds-snapshot-copy's safety depends on "the region the run copies from" (DenyDeleteInSourceRegion,
 *   DenyExplicitTagsOutsideSourceRegion, the marker pinned to arn:…:rds:<that region>:<account>:…). In
 *   the spoke that region is the session tag, in conditions only: a session tagged R marks snapshots only
 *   in R, with a marker naming R, deletes only where a marker names R, and never in R. So a snapshot a
 *   session marked (in its own region) is deletable by no session and by no hub role, whatever regions
 *   they run for — the proofs in test/meta/serverless.test.ts run on the hub role and on the spoke role.
 *   Its statements that act in destination regions (copy, inherit tags, prune, reads) are marked
 *   inEveryRegion and not pinned, as in the hub role (`rds:*:`). Encrypted copies with customer-managed
 *   keys stay hub-only: the spoke has no parameter for keys (see the permissions file).
 * - Hub roles are unchanged: their estate statements name `${AWS::Region}`, the hub stack's region. A
 *   target in the hub's own account and region runs with the function's own role. A target in the hub's
 *   account but another region cannot be served by the hub role (a second region would need the same
 *   session-region scoping, and a Lambda role's session has no per-run tag): deploy the spoke stack in the
 *   hub account too (an ordinary stack of infra/spoke.yml; the trust admits the hub role of the same
 *   account) and assume it for those targets. Its IAM then refuses what the region forbids, instead of
 *   the hub role acting in a region its safety rules were not written for.
 *
 * Trust of a spoke role: the hub account's root as Principal, narrowed by `ArnEquals aws:PrincipalArn` to
 * exactly `nightshift-<stage>-<fn>` of the hub account, and sts:AssumeRole only with the external id.
 * Naming the role ARN as Principal would do the same, but IAM refuses to create a trust policy naming a
 * role that does not exist yet (an account that joins the OU before the hub is deployed), and pins the
 * role's unique id, so a hub role deleted and created again would silently stop being trusted.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import { stringify } from 'yaml';
import {
  actsInEveryRegion,
  HUB,
  isConditional,
  REGION_TAG,
  SESSION_REGION,
  SPOKE,
  type FunctionPermissions,
  type PolicyEntry,
  type Statement,
} from '#shared/iam/policy.ts';
import { ALIAS_STATEMENT, fleetStatements, runStatements, STAGE_VARIABLE } from '#shared/iam/run.ts';
import { hubRoleName, spokeRoleName, type FleetFunction } from '#shared/fleet/target.ts';
import { permissions as ecsScheduler } from '#functions/ecs-scheduler/permissions.ts';
import { permissions as rdsScheduler } from '#functions/rds-scheduler/permissions.ts';
import { permissions as rdsSnapshotCopy } from '#functions/rds-snapshot-copy/permissions.ts';
import { permissions as snapshotTags } from '#functions/snapshot-tags/permissions.ts';
import { permissions as instanceRotation } from '#functions/instance-rotation/permissions.ts';
import { permissions as ssmRestart } from '#functions/ssm-restart/permissions.ts';

export const PERMISSIONS: Record<FleetFunction, FunctionPermissions> = {
  'ecs-scheduler': ecsScheduler,
  'rds-scheduler': rdsScheduler,
  'rds-snapshot-copy': rdsSnapshotCopy,
  'snapshot-tags': snapshotTags,
  'instance-rotation': instanceRotation,
  'ssm-restart': ssmRestart,
};

export const SPOKE_FILE = 'infra/spoke.yml';
export const hubRoleFile = (fn: string) => `infra/generated/${fn}-role.yml`;
/** The logical id of a function's hub role (what serverless.yml's `role:` names): EcsSchedulerRole. */
export const roleLogicalId = (fn: string) =>
  `${fn.replace(/(^|-)([a-z])/g, (_, __, c: string) => c.toUpperCase())}Role`;

const POLICY_VERSION = '2012-10-17';

/** The hub role: the run statements, the estate in the stack's region, hub-only and fleet statements. */
export const hubRole = (fn: string) => {
  const p = PERMISSIONS[fn as FleetFunction];
  if (!p) throw new Error(`no permissions for ${fn}`);
  return {
    Type: 'AWS::IAM::Role',
    Properties: {
      RoleName: hubRoleName(STAGE_VARIABLE, fn),
      AssumeRolePolicyDocument: {
        Version: POLICY_VERSION,
        Statement: [
          { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
        ],
      },
      Policies: [
        {
          PolicyName: fn,
          PolicyDocument: {
            Version: POLICY_VERSION,
            Statement: [...runStatements(fn), ...p.estate(HUB), ...(p.hub ?? []), ...fleetStatements(fn)],
          },
        },
      ],
    },
  };
};

/** A spoke statement: regional Allows pinned to the session's region (aws:RequestedRegion). */
const pinned = (entry: PolicyEntry): Statement => {
  if (isConditional(entry)) throw new Error('a spoke statement cannot depend on a hub template condition');
  if (entry.Effect === 'Deny' || actsInEveryRegion(entry)) return entry;
  const equals = entry.Condition?.StringEquals ?? {};
  if ('aws:RequestedRegion' in equals) throw new Error(`${entry.Sid} already names aws:RequestedRegion`);
  return {
    ...entry,
    Condition: { ...entry.Condition, StringEquals: { ...equals, 'aws:RequestedRegion': SESSION_REGION } },
  };
};

/** Every statement of a function's spoke role. */
export const spokeStatements = (fn: string): Statement[] => {
  const p = PERMISSIONS[fn as FleetFunction];
  if (!p) throw new Error(`no permissions for ${fn}`);
  return [
    // Every statement below assumes the session says which region it runs for.
    {
      Sid: 'DenyWithoutSessionRegion',
      Effect: 'Deny',
      Action: '*',
      Resource: '*',
      Condition: { Null: { [`aws:PrincipalTag/${REGION_TAG}`]: 'true' } },
    },
    // The allowlist reads the account's alias with this role; IAM is global (not pinned to a region).
    ALIAS_STATEMENT,
    ...p.estate(SPOKE).map(pinned),
  ];
};

const hubRoleArn = (fn: string) => ({
  'Fn::Sub': `arn:\${AWS::Partition}:iam::\${HubAccountId}:role/${hubRoleName('${Stage}', fn)}`,
});

/** The spoke template: exactly the parameters HubAccountId, ExternalId and Stage; one role per function. */
export const spokeTemplate = () => ({
  AWSTemplateFormatVersion: '2010-09-09',
  Description:
    "nightshift spoke: one role per function, nightshift-<stage>-<function>-spoke, trusted by that function's hub role only, with the external id. Deploy in one region per account (roles are global).",
  Parameters: {
    HubAccountId: {
      Type: 'String',
      Description: 'The account of the nightshift hub stack',
      AllowedPattern: '^\\d{12}$',
    },
    ExternalId: {
      Type: 'String',
      Description: "The hub stage's spokeExternalId param",
      // sts:AssumeRole's ExternalId: 2 to 1224 characters of [\w+=,.@:/-] (AWS STS API Reference).
      AllowedPattern: '^[\\w+=,.@:/-]{2,1224}$',
      NoEcho: true,
    },
    Stage: {
      Type: 'String',
      Description: 'The hub stage (dev, prod, ...): the roles are nightshift-<Stage>-<function>-spoke',
      AllowedPattern: '^[A-Za-z0-9-]+$',
      // Role names have at most 64 characters: nightshift-<Stage>-instance-rotation-spoke.
      MaxLength: 29,
    },
  },
  Resources: Object.fromEntries(
    Object.keys(PERMISSIONS).map((fn) => [
      roleLogicalId(fn).replace(/Role$/, 'SpokeRole'),
      {
        Type: 'AWS::IAM::Role',
        Properties: {
          RoleName: { 'Fn::Sub': spokeRoleName('${Stage}', fn) },
          Description: `nightshift ${fn}, assumed by the hub role nightshift-<Stage>-${fn} for one region (session tag ${REGION_TAG})`,
          AssumeRolePolicyDocument: {
            Version: POLICY_VERSION,
            Statement: [
              {
                Sid: 'HubRoleWithExternalId',
                Effect: 'Allow',
                Principal: { AWS: { 'Fn::Sub': 'arn:${AWS::Partition}:iam::${HubAccountId}:root' } },
                Action: 'sts:AssumeRole',
                Condition: {
                  ArnEquals: { 'aws:PrincipalArn': hubRoleArn(fn) },
                  StringEquals: { 'sts:ExternalId': { Ref: 'ExternalId' } },
                },
              },
              // The session tag that names the run's region, and no other (aws:TagKeys). A tag alone
              // grants nothing: STS authorises it as part of the AssumeRole above.
              {
                Sid: 'HubRoleTagsTheRegion',
                Effect: 'Allow',
                Principal: { AWS: { 'Fn::Sub': 'arn:${AWS::Partition}:iam::${HubAccountId}:root' } },
                Action: 'sts:TagSession',
                Condition: {
                  ArnEquals: { 'aws:PrincipalArn': hubRoleArn(fn) },
                  'ForAllValues:StringEquals': { 'aws:TagKeys': [REGION_TAG] },
                  Null: { [`aws:RequestTag/${REGION_TAG}`]: 'false' },
                },
              },
            ],
          },
          Policies: [
            {
              PolicyName: fn,
              PolicyDocument: { Version: POLICY_VERSION, Statement: spokeStatements(fn) },
            },
          ],
        },
      },
    ]),
  ),
});

// YAML 1.1 quoting: osls (js-yaml) and cfn-lint read an unquoted 2012-10-17 as a date.
const toYaml = (header: string, document: unknown) =>
  `${header}\n${stringify(document, { version: '1.1', lineWidth: 0, aliasDuplicateObjects: false, singleQuote: true })}`;

/** Every generated file, path → text, as `npm run iam` writes them. */
export const generatedFiles = (): Record<string, string> => ({
  ...Object.fromEntries(
    Object.keys(PERMISSIONS).map((fn) => [
      hubRoleFile(fn),
      toYaml(
        `# ${fn}'s hub role, generated by scripts/iam.ts from functions/${fn}/permissions.ts: do not edit,\n` +
          '# change the permissions file and run `npm run iam`. serverless.yml includes it.',
        { Resources: { [roleLogicalId(fn)]: hubRole(fn) } },
      ),
    ]),
  ),
  [SPOKE_FILE]: toYaml(
    '# The nightshift spoke, generated by scripts/iam.ts from functions/*/permissions.ts: do not edit, change\n' +
      '# the permissions files and run `npm run iam`. Deploy it with a service-managed StackSet to one region\n' +
      '# per member account (README, "Fleet"), after the hub stack.',
    spokeTemplate(),
  ),
});

/** The generated files that differ from what is checked in. */
export const staleFiles = (): string[] =>
  Object.entries(generatedFiles())
    .filter(([path, text]) => {
      try {
        return readFileSync(path, 'utf8') !== text;
      } catch {
        return true;
      }
    })
    .map(([path]) => path);

const main = () => {
  // Under CI a stale file fails the build instead of being rewritten where nobody commits it.
  if (process.env.CI === 'true') {
    const stale = staleFiles();
    if (stale.length > 0) {
      console.error(`stale generated IAM files: ${stale.join(', ')}: run npm run iam and commit them`);
      process.exit(1);
    }
    return;
  }
  for (const [path, text] of Object.entries(generatedFiles())) {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, text);
    console.log(path);
  }
};

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) main();
