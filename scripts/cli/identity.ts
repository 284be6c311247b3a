import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { sdkConfig } from '#shared/aws/config.ts';

/**
 * Who is asking, as an override records it (`by=`): the part of the caller's ARN after the account,
 * e.g. `assumed-role/AWSReservedSSO_Dev_0123/jane@example.com` or `user/jane`; `root` for the root user.
 * The ARN is what CloudTrail records for the same calls.
 */
export const identityOf = (arn: string): string => {
  const resource = arn.split(':').slice(5).join(':');
  return resource === 'root' || resource === '' ? 'root' : resource;
};

/** The caller's identity (STS GetCallerIdentity, which needs no permission). */
export const callerIdentity = async (): Promise<string> => {
  const ask = (region?: string) =>
    new STSClient({ ...sdkConfig(), ...(region && { region }) }).send(new GetCallerIdentityCommand({}));
  // Any region answers who the caller is; without one configured, the global endpoint's.
  const out = await ask().catch((error: Error) => {
    if (/region is missing/i.test(error.message)) return ask('us-east-1');
    throw error;
  });
  if (!out.Arn) throw new Error('STS GetCallerIdentity returned no ARN');
  return identityOf(out.Arn);
};
