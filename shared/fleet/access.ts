/**
 * How a run reaches a fleet target: the spoke role of its function in the target account (assumed with
 * the function's own role, the external id, a session name naming the run and a session tag naming the
 * target region), or the function's own role when the target is the hub's own account. Then the
 * allowlist, before any other call in that account (shared/allowlist.ts decides; this reads).
 */
import { GetCallerIdentityCommand, AssumeRoleCommand } from '@aws-sdk/client-sts';
import { ListAccountAliasesCommand } from '@aws-sdk/client-iam';
import { DescribeAccountCommand } from '@aws-sdk/client-organizations';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import {
  allowDecision,
  parseAllowedAccounts,
  parseProtectedPatterns,
  type AllowDecision,
} from '../allowlist.ts';
import { iamClient } from '../aws/iam.ts';
import { organizationsClient } from '../aws/organizations.ts';
import { stsClient } from '../aws/sts.ts';
import type { ClientScope } from '../aws/config.ts';
import { errorMessage, InputError } from '../errors.ts';
import type { ResourceResult } from '../report.ts';
import { killSwitchEngaged } from './kill-switch.ts';
import { REGION_SESSION_TAG, partitionOf, sessionName, spokeRoleArn, type Target } from './target.ts';

/** What a function needs to reach targets: read from its environment when a target arrives. */
export interface FleetSettings {
  stage: string;
  allowedAccounts: string[];
  protectedPatterns: string[];
  externalId: string | undefined;
}

/** ALLOWED_ACCOUNTS, PROTECTED_ACCOUNT_PATTERNS, SPOKE_EXTERNAL_ID and NIGHTSHIFT_STAGE; names a bad one. */
export const fleetSettings = (env: NodeJS.ProcessEnv = process.env): FleetSettings => {
  const stage = env.NIGHTSHIFT_STAGE?.trim();
  if (!stage)
    throw new InputError(
      'NIGHTSHIFT_STAGE: unset; a fleet target needs the stage to name its roles',
      'NIGHTSHIFT_STAGE',
    );
  const externalId = env.SPOKE_EXTERNAL_ID?.trim();
  return {
    stage,
    allowedAccounts: parseAllowedAccounts(env.ALLOWED_ACCOUNTS),
    protectedPatterns: parseProtectedPatterns(env.PROTECTED_ACCOUNT_PATTERNS),
    externalId: externalId || undefined,
  };
};

/** Role chaining (a Lambda role assuming another) is capped at one hour; a run lasts at most 15 minutes. */
const SESSION_SECONDS = 3600;
/** Credentials this close to their expiry are renewed before a call. */
const RENEW_BEFORE_MS = 5 * 60_000;

/**
 * The spoke role's credentials, assumed now (so a missing role or a refused trust fails here, named) and
 * renewed when close to expiry. The STS client is the function's own (its role, its retries).
 */
export const assumeSpoke = async (
  target: Target,
  settings: FleetSettings,
  fn: string,
  run: string,
): Promise<AwsCredentialIdentityProvider> => {
  const roleArn = spokeRoleArn(partitionOf(target.region), target.account, settings.stage, fn);
  if (!settings.externalId)
    throw new InputError(
      `SPOKE_EXTERNAL_ID: unset; the spoke role ${roleArn} requires the external id (stage param spokeExternalId)`,
      'SPOKE_EXTERNAL_ID',
    );
  const assume = async (): Promise<AwsCredentialIdentity> => {
    const out = await stsClient().send(
      new AssumeRoleCommand({
        RoleArn: roleArn,
        RoleSessionName: sessionName(run),
        ExternalId: settings.externalId,
        DurationSeconds: SESSION_SECONDS,
        Tags: [{ Key: REGION_SESSION_TAG, Value: target.region }],
      }),
    );
    const c = out.Credentials;
    if (!c?.AccessKeyId || !c.SecretAccessKey) throw new Error(`STS returned no credentials for ${roleArn}`);
    return {
      accessKeyId: c.AccessKeyId,
      secretAccessKey: c.SecretAccessKey,
      ...(c.SessionToken && { sessionToken: c.SessionToken }),
      ...(c.Expiration && { expiration: new Date(c.Expiration) }),
    };
  };
  let current: AwsCredentialIdentity;
  try {
    current = await assume();
  } catch (error) {
    throw new SpokeUnreachableError(
      `could not assume ${roleArn} (is the spoke stack deployed there, for stage ${settings.stage}, with this external id?): ${errorMessage(error)}`,
    );
  }
  let renewing: Promise<AwsCredentialIdentity> | undefined;
  return async () => {
    const expiry = current.expiration?.getTime();
    if (expiry !== undefined && expiry - Date.now() < RENEW_BEFORE_MS) {
      renewing ??= assume().finally(() => (renewing = undefined));
      current = await renewing;
    }
    return current;
  };
};

/** The target cannot be reached: its run fails (redrive re-runs it), unlike a refused account. */
export class SpokeUnreachableError extends Error {
  override name = 'SpokeUnreachableError';
}

let ownAccount: Promise<string> | undefined;

/** The hub's account: from the Lambda's ARN when there is one, else one GetCallerIdentity per process. */
export const hubAccountOf = (invokedFunctionArn: string | undefined): Promise<string> => {
  const fromArn = invokedFunctionArn?.split(':')[4];
  if (fromArn && /^\d{12}$/.test(fromArn)) return Promise.resolve(fromArn);
  ownAccount ??= stsClient()
    .send(new GetCallerIdentityCommand({}))
    .then((out) => {
      if (!out.Account) throw new Error('STS GetCallerIdentity returned no account');
      return out.Account;
    })
    .catch((error: unknown) => {
      ownAccount = undefined;
      throw error;
    });
  return ownAccount;
};

/**
 * Throttling and server errors the SDK's retries did not get past: the allowlist could not decide for
 * now, which fails the target (alarmed, redriven) rather than refusing it (refused is not retried).
 */
const transient = (error: unknown): boolean => {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return (
    /Throttl|TooManyRequests|RequestLimitExceeded|ServiceUnavailable|InternalFailure/.test(e.name ?? '') ||
    (e.$metadata?.httpStatusCode ?? 0) >= 500
  );
};

/** Organizations errors that mean the hub cannot read names: then the alias alone decides. */
const NAME_UNREADABLE = new Set([
  'AWSOrganizationsNotInUseException',
  'AccessDeniedException',
  'AccessDenied',
  'AccountNotFoundException',
]);

/**
 * The allowlist for one target: ALLOWED_ACCOUNTS first (no call at all for an account outside it), then
 * the alias through the target's credentials (unreadable: refused), then the Organizations name with the
 * hub's own role when it can read it (an organization it is not in, or no permission: the alias decides;
 * any other error: refused, since the name could be a production one).
 */
export const checkAllowlist = async (
  target: Target,
  settings: FleetSettings,
  scope: () => Promise<ClientScope>,
): Promise<AllowDecision> => {
  const listed = allowDecision({ account: target.account, alias: null }, settings.allowedAccounts, []);
  if (!listed.allowed) return listed;
  let alias: string | null | { error: string };
  try {
    const out = await iamClient(await scope()).send(new ListAccountAliasesCommand({}));
    alias = out.AccountAliases?.[0] ?? null;
  } catch (error) {
    if (error instanceof SpokeUnreachableError) throw error;
    if (transient(error))
      throw new SpokeUnreachableError(
        `the alias of account ${target.account} could not be read for now (${errorMessage(error)}): nothing was changed; redrive the run`,
      );
    alias = { error: errorMessage(error) };
  }
  let organizationName: string | undefined;
  try {
    const out = await organizationsClient().send(new DescribeAccountCommand({ AccountId: target.account }));
    organizationName = out.Account?.Name;
  } catch (error) {
    if (transient(error))
      throw new SpokeUnreachableError(
        `the Organizations name of account ${target.account} could not be read for now (${errorMessage(error)}): nothing was changed; redrive the run`,
      );
    if (!NAME_UNREADABLE.has((error as Error).name))
      return {
        allowed: false,
        reason: `refused: the Organizations name of account ${target.account} could not be read (${errorMessage(error)}), so it cannot be told from production`,
      };
  }
  return allowDecision(
    { account: target.account, alias, ...(organizationName !== undefined && { organizationName }) },
    settings.allowedAccounts,
    settings.protectedPatterns,
  );
};

/** A target the run may act in, with its clients' scope; or the one row that says why not. */
export type Reached = { target: Target & { scope: ClientScope } } | { row: ResourceResult };

/**
 * Everything before a fleet target's first call of its own: the kill switch (fleet iterations of a
 * deployed function), the spoke role (or the function's own role in the hub's account), the allowlist.
 * A refused account is `skipped` (`refused: …`), an unreachable one `failed`, a switched-off run `undone`.
 */
export const reachTarget = async (
  target: Target,
  options: {
    fn: string;
    run: string;
    /** The Lambda's ARN, when deployed: the hub's account. */
    invokedFunctionArn: string | undefined;
    /** The deployed function to check the kill switch of; undefined: no check (local runs check first). */
    killSwitchOf: string | undefined;
    /** The hub stack's region; default AWS_REGION (Lambda sets it to the function's region). */
    hubRegion?: string;
    settings: () => FleetSettings;
  },
): Promise<Reached> => {
  const row = (outcome: ResourceResult['outcome'], detail: string): Reached => ({
    row: { arn: target.account, type: 'account', outcome, detail },
  });
  if (options.killSwitchOf) {
    const why = await killSwitchEngaged(options.killSwitchOf);
    if (why) return row('undone', why);
  }
  const settings = options.settings();
  // An account outside the list is refused before anything is assumed in it.
  const listed = allowDecision({ account: target.account, alias: null }, settings.allowedAccounts, []);
  if (!listed.allowed) return row('skipped', listed.reason);
  const hub = await hubAccountOf(options.invokedFunctionArn);
  // The function's own role acts only in the hub stack's region (its statements are pinned to it): in
  // another region of the hub's account the run assumes the spoke role deployed there too (README, Fleet).
  const ownRole = target.account === hub && target.region === (options.hubRegion ?? process.env.AWS_REGION);
  let scope: Promise<ClientScope> | undefined;
  const scopeOf = () =>
    (scope ??= ownRole
      ? Promise.resolve({ region: target.region })
      : assumeSpoke(target, settings, options.fn, options.run).then((credentials) => ({
          region: target.region,
          credentials,
        })));
  try {
    const decision = await checkAllowlist(target, settings, scopeOf);
    if (!decision.allowed) return row('skipped', decision.reason);
    return { target: { ...target, scope: await scopeOf() } };
  } catch (error) {
    if (error instanceof SpokeUnreachableError) return row('failed', error.message);
    throw error;
  }
};
