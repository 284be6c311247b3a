/**
 * Multi-account estates in moto: moto keeps resources per account, and credentials from an assumed role
 * act in that role's account. A test's own set-up assumes `role/estate-admin` in each account (the STS
 * gate lets roles other than spokes through) and seeds it directly against moto.
 */
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { CreateAccountAliasCommand, IAMClient } from '@aws-sdk/client-iam';
import {
  CreateAccountCommand,
  CreateOrganizationCommand,
  OrganizationsClient,
} from '@aws-sdk/client-organizations';

const ROOT = { accessKeyId: 'testing', secretAccessKey: 'testing' };

export interface AccountCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

/** Credentials acting in `account` (moto: any role there). */
export const accountCredentials = async (url: string, account: string): Promise<AccountCredentials> => {
  const sts = new STSClient({ endpoint: url, region: 'eu-central-1', credentials: ROOT });
  const out = await sts.send(
    new AssumeRoleCommand({
      RoleArn: `arn:aws:iam::${account}:role/estate-admin`,
      RoleSessionName: 'estate',
    }),
  );
  const c = out.Credentials!;
  return { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken! };
};

export const setAlias = async (
  url: string,
  credentials: AccountCredentials,
  alias: string,
): Promise<void> => {
  const iam = new IAMClient({ endpoint: url, region: 'us-east-1', credentials });
  await iam.send(new CreateAccountAliasCommand({ AccountAlias: alias }));
};

/** An organization in the hub's account with member accounts of these names; their ids, by name. */
export const organization = async (url: string, names: string[]): Promise<Record<string, string>> => {
  const org = new OrganizationsClient({ endpoint: url, region: 'us-east-1', credentials: ROOT });
  await org.send(new CreateOrganizationCommand({ FeatureSet: 'ALL' }));
  const ids: Record<string, string> = {};
  for (const name of names) {
    const out = await org.send(
      new CreateAccountCommand({ AccountName: name, Email: `${name.replace(/\W/g, '')}@example.com` }),
    );
    ids[name] = out.CreateAccountStatus!.AccountId!;
  }
  return ids;
};
