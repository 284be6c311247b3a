/**
 * The account allowlist of a fleet run (issue 11): whether a function may act in a target account at all,
 * decided before any other call there. Pure: the account, its alias and its Organizations name in (as read
 * by the caller), a decision with the reason out.
 *
 * - The account must be in ALLOWED_ACCOUNTS (12-digit ids, comma list).
 * - Neither its alias (`iam:ListAccountAliases`) nor its Organizations name may match a word of
 *   PROTECTED_ACCOUNT_PATTERNS (default `prod,production,live`): case-insensitive, whole words, so
 *   `acme-shop-production` and `Payments Live` match `production` and `live`, `liveops` and `reproduce` do not.
 * - An alias that could not be read means refused: an account nobody can tell from production is not touched.
 */
import { InputError } from './errors.ts';

/** PROTECTED_ACCOUNT_PATTERNS when unset or empty. Public contract. */
export const DEFAULT_PROTECTED_ACCOUNT_PATTERNS: readonly string[] = ['prod', 'production', 'live'];

const ACCOUNT = /^\d{12}$/;

const items = (text: string | undefined) =>
  (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

/** ALLOWED_ACCOUNTS: 12-digit account ids. A malformed entry is refused, naming it and the variable. */
export const parseAllowedAccounts = (text: string | undefined): string[] => {
  const accounts = items(text);
  const bad = accounts.find((a) => !ACCOUNT.test(a));
  if (bad !== undefined)
    throw new InputError(`ALLOWED_ACCOUNTS: "${bad}" is not a 12-digit AWS account id`, 'ALLOWED_ACCOUNTS');
  return [...new Set(accounts)];
};

/** PROTECTED_ACCOUNT_PATTERNS: words or phrases, compared in lower case; empty keeps the default. */
export const parseProtectedPatterns = (text: string | undefined): string[] => {
  const patterns = items(text).map((p) => p.toLowerCase());
  return patterns.length > 0 ? [...new Set(patterns)] : [...DEFAULT_PROTECTED_ACCOUNT_PATTERNS];
};

/** Words: split at anything but letters and digits, and where letters meet digits or a capital follows a
 * small letter, so `acme-prod01`, `AcmeProd` and `Prod2 EU` all hold `prod`. */
const words = (text: string) =>
  text
    .replace(/([a-z])([A-Z])/g, '$1 $2')
    .replace(/([A-Za-z])([0-9])/g, '$1 $2')
    .replace(/([0-9])([A-Za-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w !== '');

/** The pattern whose words stand, in order and whole, in `name`; undefined when none does. */
export const protectedPattern = (name: string, patterns: readonly string[]): string | undefined => {
  const have = words(name);
  return patterns.find((pattern) => {
    const want = words(pattern);
    if (want.length === 0) return false;
    for (let i = 0; i + want.length <= have.length; i += 1)
      if (want.every((w, j) => have[i + j] === w)) return true;
    return false;
  });
};

/** What the caller could read about the target account. */
export interface AccountFacts {
  account: string;
  /** Its IAM account alias: the alias, none (`null`), or why it could not be read. */
  alias: string | null | { error: string };
  /** Its name in AWS Organizations, when the hub could read it. */
  organizationName?: string;
}

export type AllowDecision = { allowed: true } | { allowed: false; reason: string };

/** Whether a fleet run may act in this account; the reason starts with `refused:` when not. */
export const allowDecision = (
  facts: AccountFacts,
  allowed: readonly string[],
  patterns: readonly string[],
): AllowDecision => {
  if (!allowed.includes(facts.account))
    return {
      allowed: false,
      reason: `refused: account ${facts.account} is not in ALLOWED_ACCOUNTS (${allowed.join(', ') || 'empty'})`,
    };
  if (facts.alias !== null && typeof facts.alias === 'object')
    return {
      allowed: false,
      reason: `refused: the alias of account ${facts.account} could not be read (${facts.alias.error}), so it cannot be told from production`,
    };
  for (const [what, name] of [
    ['alias', facts.alias],
    ['Organizations name', facts.organizationName],
  ] as const) {
    if (typeof name !== 'string') continue;
    const pattern = protectedPattern(name, patterns);
    if (pattern !== undefined)
      return {
        allowed: false,
        reason: `refused: its ${what} "${name}" matches "${pattern}" of PROTECTED_ACCOUNT_PATTERNS (${patterns.join(', ')})`,
      };
  }
  return { allowed: true };
};
