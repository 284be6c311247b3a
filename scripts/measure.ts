/**
 * The footprint of the built functions (run after `npm run build`), next to their Python peers.
 *
 * Per function: dist/<fn>/index.mjs alone, and with every chunk it imports statically (what a cold start
 * parses), raw and gzipped, against the 400 KiB goal; the chunks loaded only on demand, with their size;
 * and the cold import time, the median of fresh Node processes that each import the bundle once, as a
 * Lambda cold start does. Beside it, in the same run, the Python peer's cold path: a fresh python3 that
 * imports boto3 and creates one client of the service the function needs most, timed the same way
 * (inside the process, from before the import to after the client exists), and the ratio against the
 * 0.35 goal. Ours and the peer's runs alternate (A B A B ...) so that load from other processes on the
 * machine falls on both alike. Last, `nightshift --help` wall time (a fresh process, start to exit)
 * against its 0.3 s goal.
 */
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { bundleGraph, functionNames } from './bundle-graph.ts';

const RUNS = Number(process.env.MEASURE_RUNS ?? 15);
export const BUNDLE_GOAL_KIB = 400;
const RATIO_GOAL = 0.35;
const HELP_GOAL_MS = 300;

/** The boto3 client a Python peer of each function would create first: the service it needs most. */
const PEER_SERVICE: Record<string, string> = {
  'ecs-scheduler': 'ecs',
  fleet: 'stepfunctions',
  'instance-rotation': 'ec2',
  'rds-scheduler': 'rds',
  'rds-snapshot-copy': 'rds',
  'snapshot-tags': 'ec2',
  'ssm-restart': 'ssm',
};

const env = {
  ...process.env,
  AWS_REGION: 'eu-central-1',
  AWS_DEFAULT_REGION: 'eu-central-1',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};

const run = (command: string, args: string[]): string => {
  const out = spawnSync(command, args, { encoding: 'utf8', env });
  if (out.error) throw out.error;
  if (out.status !== 0) throw new Error(`${command} ${args.join(' ')}: exit ${out.status}\n${out.stderr}`);
  return out.stdout;
};

const importMs = (file: string): number => {
  const code = `const t = performance.now(); await import(${JSON.stringify(pathToFileURL(file).href)}); console.log(performance.now() - t);`;
  return Number(run(process.execPath, ['--input-type=module', '-e', code]).trim());
};

const peerCode = (service: string) =>
  'import time\nt = time.perf_counter()\nimport boto3\n' +
  `boto3.client(${JSON.stringify(service)}, region_name="eu-central-1")\n` +
  'print((time.perf_counter() - t) * 1000)';
const peerMs = (service: string): number => Number(run('python3', ['-c', peerCode(service)]).trim());

const helpMs = (bin: string): number => {
  const t = performance.now();
  run(process.execPath, [bin, '--help']);
  return performance.now() - t;
};

/** Why the Python peer cannot be measured here, or undefined when python3 imports boto3. */
const peerMissing = (): string | undefined => {
  const out = spawnSync('python3', ['-c', 'import boto3; print(boto3.__version__)'], {
    encoding: 'utf8',
    env,
  });
  if (out.error) return `python3 not found (${out.error.message})`;
  if (out.status !== 0) return 'python3 has no boto3 (pip install boto3)';
  boto3Version = out.stdout.trim();
  return undefined;
};
let boto3Version = '';

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};
const kib = (bytes: number) => (bytes / 1024).toFixed(1);
const ms = (value: number) => value.toFixed(1);
const verdict = (ok: boolean) => (ok ? 'pass' : 'FAIL');

const table = (header: string[], rows: string[][]): string => {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
};

const main = () => {
  const missing = peerMissing();
  const sizes: string[][] = [];
  const times: string[][] = [];
  const notes: string[] = [];
  for (const fn of functionNames()) {
    const graph = bundleGraph('dist', fn);
    const cold = graph.coldStart;
    const onDemand = graph.onDemand.reduce((sum, c) => sum + c.bytes, 0);
    sizes.push([
      fn,
      `${kib(graph.entry.bytes)} (${kib(graph.entry.gzipped)})`,
      `${kib(cold.bytes)} (${kib(cold.gzipped)})`,
      `${cold.files.length - 1}`,
      verdict(cold.bytes <= BUNDLE_GOAL_KIB * 1024),
      `${kib(onDemand)} (${graph.onDemand.length})`,
    ]);
    const byName = new Map<string, number>();
    for (const c of graph.onDemand) byName.set(c.name, (byName.get(c.name) ?? 0) + c.bytes);
    notes.push(
      `  ${fn}: ${[...byName]
        .sort((a, b) => b[1] - a[1])
        .map(([name, bytes]) => `${name} ${kib(bytes)}`)
        .join(', ')}` +
        (graph.unreached.length > 0 ? `; ${graph.unreached.length} chunk(s) built but never imported` : ''),
    );
    const service = PEER_SERVICE[fn] ?? 'sts';
    const ours: number[] = [];
    const peer: number[] = [];
    const entry = resolve('dist', fn, 'index.mjs');
    for (let i = 0; i < RUNS; i++) {
      ours.push(importMs(entry));
      if (!missing) peer.push(peerMs(service));
    }
    const ratio = missing ? NaN : median(ours) / median(peer);
    times.push([
      fn,
      ms(median(ours)),
      missing ? '-' : `${ms(median(peer))} (${service})`,
      missing ? '-' : ratio.toFixed(2),
      missing ? 'skipped' : verdict(ratio <= RATIO_GOAL),
    ]);
  }
  const bin = resolve('dist', 'cli', 'nightshift.mjs');
  const help = median(Array.from({ length: RUNS }, () => helpMs(bin)));

  console.log(`Bundles (KiB, gzipped in brackets; goal: entry + static chunks <= ${BUNDLE_GOAL_KIB} KiB)`);
  console.log(
    table(
      ['function', 'entry', 'entry + static chunks', 'chunks', `<= ${BUNDLE_GOAL_KIB}`, 'on demand (chunks)'],
      sizes,
    ),
  );
  console.log(
    'On demand (KiB, largest first): parsed only by the code path that imports it. access, kill-switch: a run\n' +
      'with a fleet target; sns: a run that publishes its summary; dynamodb, lease-dynamo: a run that reads or writes the\n' +
      'lease table (a lease, a start record, what it left undone); dist-es, sts, sso-oidc, loadSso, signin: the\n' +
      "SDK's credential providers other than the environment's (Lambda's); event-streams: streaming operations.",
  );
  console.log(notes.join('\n'));
  console.log('');
  console.log(
    `Cold path (ms, median of ${RUNS} fresh processes each; goal: ours <= ${RATIO_GOAL} x peer). ` +
      `Ours: import dist/<fn>/index.mjs (node ${process.version}). ` +
      (missing
        ? `Peer skipped: ${missing}.`
        : `Peer: import boto3 ${boto3Version} + create one client (python3). Ours: the bundle's import; its SDK clients are built at the first invocation (10-40 ms each, not counted). Runs interleaved ours/peer (A B A B ...) so machine load falls on both alike.`),
  );
  console.log(table(['function', 'ours', 'peer (client)', 'ours/peer', `<= ${RATIO_GOAL}`], times));
  console.log('');
  console.log(
    `nightshift --help: ${ms(help)} ms wall, median of ${RUNS} fresh processes ` +
      `(goal ${HELP_GOAL_MS} ms: ${verdict(help <= HELP_GOAL_MS)})`,
  );
};

main();
