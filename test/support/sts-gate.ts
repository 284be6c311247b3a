/**
 * What moto 5.2.1 does not check when a role is assumed: that the role exists, whom its trust policy
 * admits, and the external id (moto lets any AssumeRole through and lands the credentials in the role's
 * account). The gate answers `sts:AssumeRole` of a spoke role (`nightshift-<stage>-<function>-spoke`) as
 * AWS would for the spokes a test deployed: AccessDenied, in STS's XML shape, when the role is not
 * deployed in that account, the caller is not in the hub account, the external id differs, or the session
 * name breaks STS's rules (2–64 characters of `[\w+=,.@-]`, which moto does not check either). Other
 * roles (a test's own set-up) pass to moto.
 *
 * It also learns which account each assumed access key belongs to, so a test can tell which account
 * every recorded request was sent with (`accountOf`).
 */
import { FLEET_FUNCTIONS } from '#shared/fleet/target.ts';
import type { Proxy, RecordedRequest } from './proxy.ts';

/** moto's default account: the test's own credentials, the hub. */
export const HUB_ACCOUNT = '123456789012';

export interface SpokeDeployment {
  account: string;
  stage: string;
  externalId: string;
  /** Functions whose spoke role exists there; default all. */
  functions?: string[];
}

export interface AssumeAttempt {
  roleArn: string;
  sessionName: string;
  externalId: string | undefined;
  tags: Record<string, string>;
  caller: string;
  allowed: boolean;
  reason?: string;
}

export interface StsGate {
  /** The account whose credentials sent a recorded request. */
  accountOf: (request: RecordedRequest) => string;
  attempts: AssumeAttempt[];
  deploy: (spoke: SpokeDeployment) => void;
  remove: (account: string) => void;
}

const SPOKE = /^arn:aws[a-z-]*:iam::(\d{12}):role\/nightshift-(.+)-([a-z-]+)-spoke$/;
const FUNCTIONS: readonly string[] = FLEET_FUNCTIONS;

const denied = (message: string) => ({
  status: 403,
  contentType: 'text/xml',
  body:
    '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>' +
    `<Code>AccessDenied</Code><Message>${message}</Message></Error><RequestId>gate</RequestId></ErrorResponse>`,
});

/** The spoke function in a role name: `nightshift-dev-ecs-scheduler-spoke` → ecs-scheduler (stage dev). */
const spokeOf = (roleArn: string): { account: string; stage: string; fn: string } | undefined => {
  const m = roleArn.match(/^arn:aws[a-z-]*:iam::(\d{12}):role\/nightshift-(.+)-spoke$/);
  if (!m) return undefined;
  const fn = FUNCTIONS.find((f) => m[2]!.endsWith(`-${f}`));
  if (!fn) return undefined;
  return { account: m[1]!, stage: m[2]!.slice(0, -fn.length - 1), fn };
};

export const stsGate = (proxy: Proxy, spokes: SpokeDeployment[] = []): StsGate => {
  const keys = new Map<string, string>();
  const deployed = new Map(spokes.map((s) => [s.account, s]));
  const attempts: AssumeAttempt[] = [];
  const accountOf = (r: RecordedRequest) => (r.accessKey && keys.get(r.accessKey)) || HUB_ACCOUNT;
  proxy.stub('AssumeRole', (request) => {
    const params = new URLSearchParams(request.body);
    const roleArn = params.get('RoleArn') ?? '';
    if (!SPOKE.test(roleArn)) return undefined;
    const tags: Record<string, string> = {};
    for (let i = 1; params.has(`Tags.member.${i}.Key`); i += 1)
      tags[params.get(`Tags.member.${i}.Key`)!] = params.get(`Tags.member.${i}.Value`) ?? '';
    const attempt: AssumeAttempt = {
      roleArn,
      sessionName: params.get('RoleSessionName') ?? '',
      externalId: params.get('ExternalId') ?? undefined,
      tags,
      caller: accountOf(request),
      allowed: false,
    };
    attempts.push(attempt);
    const spoke = spokeOf(roleArn);
    const deployment = spoke && deployed.get(spoke.account);
    const caller = `arn:aws:sts::${attempt.caller}:assumed-role/caller/session`;
    const deny = (reason: string) => {
      attempt.reason = reason;
      return denied(`User: ${caller} is not authorized to perform: sts:AssumeRole on resource: ${roleArn}`);
    };
    if (!/^[\w+=,.@-]{2,64}$/.test(attempt.sessionName)) {
      attempt.reason = 'session name';
      return {
        status: 400,
        contentType: 'text/xml',
        body:
          '<ErrorResponse><Error><Type>Sender</Type><Code>ValidationError</Code><Message>1 validation error ' +
          "detected: Value at 'roleSessionName' failed to satisfy constraint</Message></Error></ErrorResponse>",
      };
    }
    if (!spoke || !deployment || deployment.stage !== spoke.stage) return deny('role not deployed');
    if (!(deployment.functions ?? FUNCTIONS).includes(spoke.fn)) return deny('role not deployed');
    if (attempt.caller !== HUB_ACCOUNT) return deny('caller not the hub');
    if (attempt.externalId !== deployment.externalId) return deny('external id');
    // infra/spoke.yml: sts:TagSession only for the key nightshift-region, and required.
    if (Object.keys(tags).join(',') !== 'nightshift-region') return deny('session tags');
    attempt.allowed = true;
    return undefined;
  });
  proxy.rewrite('AssumeRole', (body) => {
    const key = body.match(/<AccessKeyId>([^<]+)<\/AccessKeyId>/)?.[1];
    const account = body.match(/<Arn>arn:aws[a-z-]*:sts::(\d{12}):assumed-role\//)?.[1];
    if (key && account) keys.set(key, account);
    return body;
  });
  return {
    accountOf,
    attempts,
    deploy: (spoke) => deployed.set(spoke.account, spoke),
    remove: (account) => deployed.delete(account),
  };
};
