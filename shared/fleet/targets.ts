/**
 * The targets of a fleet run: every (account, region) pair of the stage's accounts — listed ones and the
 * ACTIVE accounts under the listed organizational units, nested units included — times its regions. The
 * same list for the state machine (the hub's `fleet` function) and `nightshift fleet run --local`.
 *
 * The allowlist is not applied here: each function refuses a target itself before any call in it, so a
 * refused account shows in the run's results (once per region) instead of silently disappearing.
 */
import {
  paginateListAccountsForParent,
  paginateListOrganizationalUnitsForParent,
  type OrganizationsClient,
} from '@aws-sdk/client-organizations';
import { InputError } from '../errors.ts';
import { ACCOUNT_ID, REGION, type Target } from './target.ts';

/** What the stage lists (params fleetAccounts, fleetRegions, fleetOrganizationUnits: comma strings). */
export interface FleetScope {
  accounts: readonly string[];
  regions: readonly string[];
  organizationUnits: readonly string[];
}

const OU = /^(ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32})$/;

const items = (text: string | undefined) => [
  ...new Set(
    (text ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
  ),
];

/** Parses the comma strings, naming the bad field and item. */
export const parseFleetScope = (
  params: {
    accounts?: string | undefined;
    regions?: string | undefined;
    organizationUnits?: string | undefined;
  },
  names = { accounts: 'fleetAccounts', regions: 'fleetRegions', organizationUnits: 'fleetOrganizationUnits' },
): FleetScope => {
  const check = (field: keyof typeof names, list: string[], pattern: RegExp, what: string) => {
    const bad = list.find((item) => !pattern.test(item));
    if (bad !== undefined) throw new InputError(`${names[field]}: "${bad}" is not ${what}`, names[field]);
    return list;
  };
  return {
    accounts: check('accounts', items(params.accounts), ACCOUNT_ID, 'a 12-digit AWS account id'),
    regions: check('regions', items(params.regions), REGION, 'an AWS region such as eu-central-1'),
    organizationUnits: check(
      'organizationUnits',
      items(params.organizationUnits),
      OU,
      'an organizational unit id (ou-…) or root id (r-…)',
    ),
  };
};

/**
 * The ACTIVE accounts under these units and their nested units. ListAccountsForParent and
 * ListOrganizationalUnitsForParent answer at most 20 per page (Organizations API reference): paginated.
 */
export const organizationAccounts = async (
  client: OrganizationsClient,
  units: readonly string[],
): Promise<string[]> => {
  const accounts = new Set<string>();
  const seen = new Set<string>();
  const queue = [...units];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    if (seen.has(parent)) continue;
    seen.add(parent);
    for await (const page of paginateListAccountsForParent({ client }, { ParentId: parent }))
      for (const account of page.Accounts ?? [])
        if (account.Id && (account.State ?? account.Status) === 'ACTIVE') accounts.add(account.Id);
    for await (const page of paginateListOrganizationalUnitsForParent({ client }, { ParentId: parent }))
      for (const unit of page.OrganizationalUnits ?? []) if (unit.Id) queue.push(unit.Id);
  }
  return [...accounts];
};

/** Every (account, region) pair: listed accounts first, then the units' accounts, each once. */
export const fleetTargets = async (
  scope: FleetScope,
  organizations: () => OrganizationsClient,
): Promise<Target[]> => {
  if (scope.regions.length === 0)
    throw new InputError('fleetRegions: no region to run in; list at least one', 'fleetRegions');
  const fromUnits =
    scope.organizationUnits.length > 0
      ? await organizationAccounts(organizations(), scope.organizationUnits)
      : [];
  const accounts = [...new Set([...scope.accounts, ...fromUnits])];
  if (accounts.length === 0)
    throw new InputError(
      'fleetAccounts: no account to run in; list accounts or organizational units (fleetOrganizationUnits)',
      'fleetAccounts',
    );
  return accounts.flatMap((account) => scope.regions.map((region) => ({ account, region })));
};
