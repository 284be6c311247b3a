import { describe, expect, it } from 'vitest';
import {
  evaluate,
  evaluateTrust,
  type IamRequest,
  type IamStatement,
  type TrustStatement,
} from '#test/support/iam-eval.ts';

// The helper the meta tests prove IAM policies with must evaluate conditions as IAM does (IAM User
// Guide: "IAM JSON policy elements: Condition operators", "Set operators for multivalued context keys",
// "...IfExists condition operators", "Condition key names are not case-sensitive").
const P = { partition: 'aws', region: 'eu-central-1', account: '123456789012' };
const allow = (Condition: IamStatement['Condition']): IamStatement[] => [
  { Sid: 'A', Effect: 'Allow', Action: 'rds:AddTagsToResource', Resource: '*', Condition },
];
const request = (context: IamRequest['context']): IamRequest => ({
  action: 'rds:AddTagsToResource',
  resource: 'arn:aws:rds:eu-central-1:123456789012:snapshot:a',
  context,
});
const allowed = (statements: IamStatement[], context: IamRequest['context']) =>
  evaluate(statements, request(context), P).allowed;

describe('iam-eval: conditions as IAM evaluates them', () => {
  it('holds ForAllValues for every value in the list, vacuously for an absent key; ForAnyValue for one, never for an absent key', () => {
    const all = allow({ 'ForAllValues:StringEquals': { 'aws:TagKeys': ['a', 'b'] } });
    const any = allow({ 'ForAnyValue:StringEquals': { 'aws:TagKeys': ['a', 'b'] } });

    expect(allowed(all, { 'aws:TagKeys': ['a', 'b'] })).toBe(true);
    expect(allowed(all, { 'aws:TagKeys': ['a', 'c'] })).toBe(false);
    expect(allowed(all, {})).toBe(true);
    expect(allowed(all, { 'aws:TagKeys': [] })).toBe(true);
    expect(allowed(any, { 'aws:TagKeys': ['a', 'c'] })).toBe(true);
    expect(allowed(any, { 'aws:TagKeys': ['c'] })).toBe(false);
    expect(allowed(any, {})).toBe(false);
  });

  it('matches ForAllValues:StringLike and ForAnyValue:StringNotEquals value by value', () => {
    const like = allow({ 'ForAllValues:StringLike': { 'aws:TagKeys': ['nightshift:*'] } });
    const notAny = allow({ 'ForAnyValue:StringNotEquals': { 'aws:TagKeys': ['a'] } });

    expect(allowed(like, { 'aws:TagKeys': ['nightshift:x', 'nightshift:y'] })).toBe(true);
    expect(allowed(like, { 'aws:TagKeys': ['nightshift:x', 'team'] })).toBe(false);
    expect(allowed(notAny, { 'aws:TagKeys': ['a', 'b'] })).toBe(true);
    expect(allowed(notAny, { 'aws:TagKeys': ['a'] })).toBe(false);
  });

  it('treats an absent key as false for positive operators, true for negated ones and for IfExists', () => {
    expect(allowed(allow({ StringEquals: { 'aws:RequestedRegion': 'x' } }), {})).toBe(false);
    expect(allowed(allow({ StringLike: { 'aws:RequestedRegion': '*' } }), {})).toBe(false);
    expect(allowed(allow({ StringNotEquals: { 'aws:RequestedRegion': 'x' } }), {})).toBe(true);
    expect(allowed(allow({ StringNotLike: { 'aws:RequestedRegion': 'x*' } }), {})).toBe(true);
    expect(allowed(allow({ BoolIfExists: { 'rds:TagsFromRequest': 'false' } }), {})).toBe(true);
    expect(allowed(allow({ Bool: { 'rds:TagsFromRequest': 'false' } }), {})).toBe(false);
    expect(allowed(allow({ Null: { 'aws:TagKeys': 'true' } }), {})).toBe(true);
    expect(allowed(allow({ Null: { 'aws:TagKeys': 'false' } }), {})).toBe(false);
  });

  it('reads condition key names and tag keys in any case, and values in their own', () => {
    const tagged = allow({
      StringLike: { 'aws:ResourceTag/Nightshift:Copy-Source': 'arn:aws:rds:eu-central-1:*' },
    });

    expect(
      allowed(tagged, { 'aws:resourcetag/nightshift:copy-source': 'arn:aws:rds:eu-central-1:1:snapshot:a' }),
    ).toBe(true);
    expect(
      allowed(tagged, { 'aws:ResourceTag/nightshift:copy-source': 'ARN:AWS:RDS:EU-CENTRAL-1:1:snapshot:a' }),
    ).toBe(false);
  });

  it('ORs the values of one key and ANDs keys and operators', () => {
    const both = allow({
      StringEquals: { 'aws:RequestedRegion': ['eu-west-1', 'us-east-1'] },
      Bool: { 'rds:TagsFromRequest': 'false' },
    });

    expect(allowed(both, { 'aws:RequestedRegion': 'us-east-1', 'rds:TagsFromRequest': 'false' })).toBe(true);
    expect(allowed(both, { 'aws:RequestedRegion': 'us-east-1', 'rds:TagsFromRequest': 'true' })).toBe(false);
  });

  it('refuses what it cannot evaluate faithfully rather than passing it over', () => {
    expect(() => allowed(allow({ NumericLessThan: { 'aws:MultiFactorAuthAge': '3600' } }), {})).toThrow(
      /does not know the condition operator NumericLessThan/,
    );
    // A single-valued operator on a multivalued key: IAM wants a set operator there.
    expect(() =>
      allowed(allow({ StringEquals: { 'aws:TagKeys': 'a' } }), { 'aws:TagKeys': ['a', 'b'] }),
    ).toThrow(/use ForAllValues or ForAnyValue/);
    const notAction = [
      { Effect: 'Deny', NotAction: 'rds:Describe*', Resource: '*' } as unknown as IamStatement,
    ];
    expect(() => allowed(notAction, {})).toThrow(/does not know NotAction/);
  });
});

describe('iam-eval: policy variables and trust policies', () => {
  const tagged = { 'aws:PrincipalTag/nightshift-region': 'eu-west-1' };
  const pinned: IamStatement[] = [
    {
      Sid: 'Pinned',
      Effect: 'Allow',
      Action: 'ecs:UpdateService',
      Resource: { 'Fn::Sub': 'arn:${AWS::Partition}:ecs:*:${AWS::AccountId}:service/*/*' },
      Condition: { StringEquals: { 'aws:RequestedRegion': '${aws:PrincipalTag/nightshift-region}' } },
    },
    {
      Sid: 'Marker',
      Effect: 'Allow',
      Action: 'rds:DeleteDBSnapshot',
      Resource: '*',
      Condition: {
        StringLike: {
          'aws:ResourceTag/m': {
            'Fn::Sub': 'arn:${AWS::Partition}:rds:${!aws:PrincipalTag/nightshift-region}:${AWS::AccountId}:*',
          },
        },
      },
    },
  ];
  const service = 'arn:aws:ecs:eu-west-1:123456789012:service/c/web';

  it('replaces ${aws:PrincipalTag/…} in condition values, and ${!…} in Fn::Sub, with the value the session carries', () => {
    const update = (region: string) => ({
      action: 'ecs:UpdateService',
      resource: service,
      context: { ...tagged, 'aws:RequestedRegion': region },
    });
    expect(evaluate(pinned, update('eu-west-1'), P)).toEqual({ allowed: true, by: 'Pinned' });
    expect(evaluate(pinned, update('eu-central-1'), P).allowed).toBe(false);
    const deletion = (marker: string) => ({
      action: 'rds:DeleteDBSnapshot',
      resource: 'arn:aws:rds:eu-central-1:123456789012:snapshot:a',
      context: { ...tagged, 'aws:ResourceTag/m': marker },
    });
    expect(evaluate(pinned, deletion('arn:aws:rds:eu-west-1:123456789012:snapshot:a'), P).allowed).toBe(true);
    expect(evaluate(pinned, deletion('arn:aws:rds:eu-central-1:123456789012:snapshot:a'), P).allowed).toBe(
      false,
    );
  });

  it('throws rather than guess when the request lacks the variable', () => {
    expect(() =>
      evaluate(pinned, { action: 'ecs:UpdateService', resource: service, context: {} }, P),
    ).toThrow('aws:PrincipalTag/nightshift-region');
  });

  describe('evaluateTrust', () => {
    const hub = 'arn:aws:iam::111111111111:role/nightshift-dev-ecs-scheduler';
    const trust = (principal: unknown): TrustStatement[] => [
      {
        Sid: 'Hub',
        Effect: 'Allow',
        Principal: { AWS: principal },
        Action: 'sts:AssumeRole',
        Condition: {
          ArnEquals: { 'aws:PrincipalArn': hub },
          StringEquals: { 'sts:ExternalId': { Ref: 'ExternalId' } },
        },
      },
    ];
    const p = { ...P, parameters: { ExternalId: 'ext' } };
    const ask = (statements: TrustStatement[], principal: string, externalId?: string) =>
      evaluateTrust(
        statements,
        { principal, action: 'sts:AssumeRole', context: externalId ? { 'sts:ExternalId': externalId } : {} },
        p,
      ).allowed;

    it("admits, through the account's root, only the principal its conditions name, with the external id", () => {
      const root = trust('arn:aws:iam::111111111111:root');
      expect(ask(root, hub, 'ext')).toBe(true);
      expect(ask(root, hub, 'other')).toBe(false);
      expect(ask(root, hub)).toBe(false);
      expect(ask(root, 'arn:aws:iam::111111111111:role/someone-else', 'ext')).toBe(false);
      expect(ask(root, hub.replace('111111111111', '222222222222'), 'ext')).toBe(false);
    });

    it('admits a role principal only as itself, and throws on a principal form it does not know', () => {
      expect(ask(trust(hub), hub, 'ext')).toBe(true);
      expect(ask(trust('arn:aws:iam::111111111111:role/other'), hub, 'ext')).toBe(false);
      expect(() => ask(trust('*'), hub, 'ext')).toThrow('principal');
    });
  });
});
