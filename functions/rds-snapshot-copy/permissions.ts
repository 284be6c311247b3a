/**
 * rds-snapshot-copy's permissions, the one definition of its hub role
 * (infra/generated/rds-snapshot-copy-role.yml) and its spoke role (infra/spoke.yml), both written by
 * scripts/iam.ts. "Its own region" below is the region the run copies from: the hub stack's region for
 * the hub role, the session tag nightshift-region (the target's region) for the spoke role.
 *
 * Ownership, and why the role can never turn a snapshot it did not create into one it may delete.
 * Deletion is allowed on snapshots carrying nightshift's marker (PruneOwnCopies, PruneLegacyCopies): IAM
 * can only see tags. So the role must never be able to put a marker on a snapshot in a region where it
 * deletes. RDS authorises the tags of a create (CopyDBSnapshot, CopyDBClusterSnapshot with Tags) as an
 * extra rds:AddTagsToResource on the new snapshot (RDS User Guide, "Grant permission to tag Amazon RDS
 * resources during creation"), with the same aws:RequestTag, aws:TagKeys and rds:req-tag keys as tagging
 * an existing snapshot, and RDS has no condition key that tells a create from a later tagging (EC2's
 * ec2:CreateAction has no RDS counterpart; Service Authorization Reference, Amazon RDS). It does have
 * rds:TagsFromRequest: true when tags are given in the request (Tags, TagSpecifications, or
 * AddTagsToResource itself), false when a new resource inherits them from its source (CopyTags). Hence:
 *   - outside its own region the role may only let a copy inherit its source's tags
 *     (InheritTagsOnCopies), and any explicit tagging there is denied (DenyExplicitTagsOutsideSourceRegion);
 *   - in its own region it may add exactly nightshift:copy-source (pointing into this region and account)
 *     and nightshift:source-time to snapshots (MarkSources), remove exactly nightshift's keys
 *     (UnmarkSources) — and it may delete nothing there (DenyDeleteInSourceRegion);
 *   - a copy made with CopyTags inherits its source's marker, so the only snapshots that carry one where
 *     the role deletes are copies it created, or snapshots people or AWS tagged (tags spread: the code
 *     never deletes those, because RDS's own SourceDBSnapshotIdentifier / SourceDBClusterSnapshotArn
 *     must name the source too).
 * Deletes are allowed only where the marker names a snapshot of its own region and this account
 * (arn:…:rds:<own region>:<account>:…): a nightshift run from another region marks that region's
 * production snapshots with their own ARNs, and this role (this session) must not be able to delete them.
 * nightshift:source-arn is the marker of earlier versions: no statement lets the role add it anywhere
 * (MarkSources names only the two keys above; in other regions explicit tagging is denied), and the code
 * removes it from a source before copying it, so no new copy carries it; the delete allowance stays,
 * pinned the same way, only so copies earlier versions made can still be pruned.
 * Tag keys in aws:ResourceTag/… are case-insensitive in IAM (values are not); aws:TagKeys values are
 * compared case-sensitively by StringEquals, so no variant of a key can be added.
 * test/meta/serverless.test.ts evaluates these statements, hub and spoke, against the attacks and the copy.
 */
import {
  inEveryRegion,
  type FunctionPermissions,
  type PolicyEntry,
  type Scope,
  type Statement,
} from '#shared/iam/policy.ts';

const snapshots = (arn: (service: string, resource: string) => unknown) => [
  arn('rds', 'snapshot:*'),
  arn('rds', 'cluster-snapshot:*'),
];

const estate = (scope: Scope): Statement[] => {
  const here = snapshots(scope.arn) as Statement['Resource'];
  const anywhere = snapshots(scope.anyRegionArn) as Statement['Resource'];
  const ownRegionArns = scope.inRegion('arn:${AWS::Partition}:rds:{region}:${AWS::AccountId}:*');
  return [
    // Describe calls support no resource-level permissions. DescribeAccountAttributes names the manual
    // snapshot quota and its usage when a copy meets SnapshotQuotaExceeded. Sources and destinations.
    inEveryRegion({
      Sid: 'ReadSnapshots',
      Effect: 'Allow',
      Action: [
        'rds:DescribeDBSnapshots',
        'rds:DescribeDBClusterSnapshots',
        'rds:DescribeDBInstances',
        'rds:DescribeDBClusters',
        'rds:DescribeAccountAttributes',
      ],
      Resource: '*',
    }),
    {
      Sid: 'MarkSources',
      Effect: 'Allow',
      Action: 'rds:AddTagsToResource',
      Resource: here,
      Condition: {
        'ForAllValues:StringEquals': { 'aws:TagKeys': ['nightshift:copy-source', 'nightshift:source-time'] },
        // ForAllValues holds for a request without aws:TagKeys: require the key.
        Null: { 'aws:TagKeys': 'false' },
        StringLikeIfExists: { 'aws:RequestTag/nightshift:copy-source': ownRegionArns },
      },
    },
    // Marks are transient: once every target region has a copy, the sweep removes them from the source
    // (and the legacy key from every source it copies).
    {
      Sid: 'UnmarkSources',
      Effect: 'Allow',
      Action: 'rds:RemoveTagsFromResource',
      Resource: here,
      Condition: {
        'ForAllValues:StringEquals': {
          'aws:TagKeys': ['nightshift:copy-source', 'nightshift:source-time', 'nightshift:source-arn'],
        },
        Null: { 'aws:TagKeys': 'false' },
      },
    },
    // A cross-region copy is authorised on the source and on the target snapshot (any region of this
    // account); CopyTags is authorised as rds:AddTagsToResource of inherited tags.
    inEveryRegion({
      Sid: 'CopySnapshots',
      Effect: 'Allow',
      Action: ['rds:CopyDBSnapshot', 'rds:CopyDBClusterSnapshot'],
      Resource: anywhere,
    }),
    // A copy given OptionGroupName (TARGET_OPTION_GROUPS) may also be authorised on the option group (the
    // og resource type, rds:CopyOptionGroup is one of CopyDBSnapshot's keys). It lets a copy use an
    // option group of the account, nothing else.
    inEveryRegion({
      Sid: 'CopyIntoOptionGroups',
      Effect: 'Allow',
      Action: 'rds:CopyDBSnapshot',
      Resource: scope.anyRegionArn('rds', 'og:*'),
    }),
    // Inherited tags only arise when a snapshot is created from another (a copy with CopyTags); the role
    // can create snapshots only by copying, so this never reaches an existing snapshot.
    inEveryRegion({
      Sid: 'InheritTagsOnCopies',
      Effect: 'Allow',
      Action: 'rds:AddTagsToResource',
      Resource: anywhere,
      Condition: { Bool: { 'rds:TagsFromRequest': 'false' } },
    }),
    // BoolIfExists: a request without the key is treated as explicit tagging, and refused. If RDS does not
    // send rds:TagsFromRequest false for CopyTags, every copy fails AccessDenied (the row says so) rather
    // than this role being able to tag what it may delete.
    {
      Sid: 'DenyExplicitTagsOutsideSourceRegion',
      Effect: 'Deny',
      Action: 'rds:AddTagsToResource',
      Resource: '*',
      Condition: {
        BoolIfExists: { 'rds:TagsFromRequest': 'true' },
        StringNotEquals: { 'aws:RequestedRegion': scope.region },
      },
    },
    // Only snapshots whose marker names a snapshot of its own region and this account can be deleted, and
    // never in its own region, where the role may add the marker.
    inEveryRegion({
      Sid: 'PruneOwnCopies',
      Effect: 'Allow',
      Action: ['rds:DeleteDBSnapshot', 'rds:DeleteDBClusterSnapshot'],
      Resource: anywhere,
      Condition: { StringLike: { 'aws:ResourceTag/nightshift:copy-source': ownRegionArns } },
    }),
    inEveryRegion({
      Sid: 'PruneLegacyCopies',
      Effect: 'Allow',
      Action: ['rds:DeleteDBSnapshot', 'rds:DeleteDBClusterSnapshot'],
      Resource: anywhere,
      Condition: { StringLike: { 'aws:ResourceTag/nightshift:source-arn': ownRegionArns } },
    }),
    {
      Sid: 'DenyDeleteInSourceRegion',
      Effect: 'Deny',
      Action: ['rds:DeleteDBSnapshot', 'rds:DeleteDBClusterSnapshot'],
      Resource: '*',
      Condition: { StringEquals: { 'aws:RequestedRegion': scope.region } },
    },
  ];
};

/**
 * Encrypted copies with customer-managed keys, hub only: RDS uses the destination key through a grant it
 * creates with the caller's rights. The keys are the hub's stage param copyKmsKeyArns (the template
 * parameter CopyKmsKeyArns and condition HasCopyKmsKeys in infra/rds-snapshot-copy.yml). A spoke role
 * gets no KMS permission: infra/spoke.yml has exactly three parameters, none for keys, and a grant on any
 * key of the account would let the role hand RDS keys nobody chose. In a spoke account an encrypted
 * snapshot whose copy needs a customer-managed key fails AccessDenied, and its row says so.
 */
const copyKeys: PolicyEntry[] = [
  {
    'Fn::If': [
      'HasCopyKmsKeys',
      {
        Sid: 'GrantConfiguredKeysToRds',
        Effect: 'Allow',
        Action: 'kms:CreateGrant',
        Resource: { Ref: 'CopyKmsKeyArns' },
        Condition: { Bool: { 'kms:GrantIsForAWSResource': 'true' } },
      },
      { Ref: 'AWS::NoValue' },
    ],
  },
  {
    'Fn::If': [
      'HasCopyKmsKeys',
      {
        Sid: 'DescribeConfiguredKeys',
        Effect: 'Allow',
        Action: 'kms:DescribeKey',
        Resource: { Ref: 'CopyKmsKeyArns' },
      },
      { Ref: 'AWS::NoValue' },
    ],
  },
];

export const permissions: FunctionPermissions = { estate, hub: copyKeys };
