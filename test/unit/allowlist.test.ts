import { describe, expect, it } from 'vitest';
import {
  allowDecision,
  parseAllowedAccounts,
  parseProtectedPatterns,
  protectedPattern,
} from '#shared/allowlist.ts';

const DEFAULTS = parseProtectedPatterns(undefined);
const ALLOWED = ['111111111111', '222222222222'];

describe('PROTECTED_ACCOUNT_PATTERNS', () => {
  it.each([
    ['acme-shop-production', 'production'],
    ['Payments Live', 'live'],
    ['PROD', 'prod'],
    ['shop_prod_eu', 'prod'],
    ['liveops', undefined],
    ['reproduce-stage', undefined],
    ['products-dev', undefined],
    ['acme-shop-staging', undefined],
    // Digits and capitals glued to a word still part it: the most common real names.
    ['acme-prod01', 'prod'],
    ['AcmeProd', 'prod'],
    ['Prod2 EU', 'prod'],
    ['shopLive', 'live'],
    ['PRODUCTS', undefined],
    ['Liveops2', undefined],
  ])('%s matches %s (whole words, any case)', (name, pattern) => {
    expect(protectedPattern(name, DEFAULTS)).toBe(pattern);
  });

  it('matches a phrase only as whole words in order, and keeps the default when empty', () => {
    expect(protectedPattern('acme pre prod eu', ['pre prod'])).toBe('pre prod');
    expect(protectedPattern('acme prod pre', ['pre prod'])).toBeUndefined();
    expect(parseProtectedPatterns(' ')).toEqual(['prod', 'production', 'live']);
    expect(parseProtectedPatterns('Prod, Customer-Facing')).toEqual(['prod', 'customer-facing']);
  });
});

describe('ALLOWED_ACCOUNTS', () => {
  it('reads 12-digit ids and refuses anything else, naming the variable', () => {
    expect(parseAllowedAccounts('111111111111, 222222222222,111111111111')).toEqual(ALLOWED);
    expect(parseAllowedAccounts(undefined)).toEqual([]);
    expect(() => parseAllowedAccounts('111111111111,12345')).toThrow(
      /^ALLOWED_ACCOUNTS: "12345" is not a 12-digit AWS account id$/,
    );
  });
});

describe('allowDecision', () => {
  it('allows an account of the list whose alias and name are not production', () => {
    expect(
      allowDecision(
        { account: '111111111111', alias: 'acme-shop-stage', organizationName: 'Shop Stage' },
        ALLOWED,
        DEFAULTS,
      ),
    ).toEqual({ allowed: true });
    expect(allowDecision({ account: '222222222222', alias: null }, ALLOWED, DEFAULTS)).toEqual({
      allowed: true,
    });
  });

  it('refuses an account not in the list, an alias or name that looks like production, and an unreadable alias', () => {
    expect(allowDecision({ account: '333333333333', alias: 'dev' }, ALLOWED, DEFAULTS)).toEqual({
      allowed: false,
      reason: 'refused: account 333333333333 is not in ALLOWED_ACCOUNTS (111111111111, 222222222222)',
    });
    expect(
      allowDecision({ account: '111111111111', alias: 'acme-shop-production' }, ALLOWED, DEFAULTS),
    ).toEqual({
      allowed: false,
      reason:
        'refused: its alias "acme-shop-production" matches "production" of PROTECTED_ACCOUNT_PATTERNS (prod, production, live)',
    });
    expect(
      allowDecision(
        { account: '111111111111', alias: 'acme-payments', organizationName: 'Payments Live' },
        ALLOWED,
        DEFAULTS,
      ),
    ).toMatchObject({
      allowed: false,
      reason: expect.stringContaining('Organizations name "Payments Live" matches "live"'),
    });
    expect(
      allowDecision({ account: '111111111111', alias: { error: 'AccessDenied' } }, ALLOWED, DEFAULTS),
    ).toMatchObject({
      allowed: false,
      reason: expect.stringMatching(/^refused: the alias .* could not be read \(AccessDenied\)/),
    });
  });
});
