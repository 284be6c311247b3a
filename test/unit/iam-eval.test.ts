import { describe, expect, it } from 'vitest';
import { evaluate, type IamRequest, type IamStatement } from '#test/support/iam-eval.ts';

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
