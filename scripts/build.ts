/**
 * Bundles every function in functions/<name>/handler.ts to dist/<name>/index.mjs: one minified,
 * tree-shaken ESM file exporting `handler`, for the nodejs22.x runtime on arm64.
 */
import { build, type Plugin } from 'esbuild';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { FLEET_ASL_DIR, templateDefinition } from '#shared/fleet/definition.ts';
import { FLEET_FUNCTIONS } from '#shared/fleet/target.ts';
import { loadHolidayCalendars } from '#shared/holiday-loader.ts';
import { holidayYears, tabulateHolidays, type HolidayTable } from '#shared/holiday-table.ts';
import type { Schedules } from '#shared/schedules.ts';
import { readServerless } from './cli/serverless-source.ts';
import { loadSchedulesFile, SCHEDULES_FILE } from './cli/schedule.ts';
import { leanFunctionSdk } from './direct-sdk-imports.ts';
import { sdkPackageVersions } from './shake-sdk-schemas.ts';

export const functionNames = (): string[] =>
  readdirSync('functions')
    .filter((name) => existsSync(join('functions', name, 'handler.ts')))
    .sort();

/**
 * Replaces scripts/cli/serverless-source.ts in the CLI bundle with the stage params and environment
 * blocks of serverless.yml as they are now: the bin applies, with --local, the configuration of the
 * template built beside it, wherever it runs from, without a YAML parser or the project at run time.
 */
const embedServerless = (): Plugin => ({
  name: 'embed-serverless',
  setup(b) {
    b.onResolve({ filter: /[/\\]serverless-source\.ts$/ }, (args) => ({
      path: args.path,
      namespace: 'embedded-serverless',
    }));
    b.onLoad({ filter: /.*/, namespace: 'embedded-serverless' }, async () => {
      const { file } = await readServerless();
      const source = { file, origin: 'serverless.yml (as built into this CLI)' };
      return {
        contents: `export const readServerless = async () => (${JSON.stringify(source)});`,
        loader: 'js',
      };
    });
  },
});

/**
 * The year the holidays are computed from: SOURCE_DATE_EPOCH (seconds, the reproducible-builds
 * convention) when set, else the clock.
 */
const buildYear = (): number => {
  const epoch = process.env.SOURCE_DATE_EPOCH;
  return (epoch && /^\d+$/.test(epoch) ? new Date(Number(epoch) * 1000) : new Date()).getUTCFullYear();
};

/**
 * The public holidays of every calendar the schedules file names (date-holidays, same rules as
 * shared/holidays.ts), for the years holidayYears gives: what a bundle carries instead of date-holidays.
 */
const holidayTable = async (schedules: Schedules): Promise<HolidayTable> => {
  const codes = [...schedules.values()].flatMap((s) => (s.calendar === undefined ? [] : [s.calendar]));
  const years = holidayYears(buildYear());
  return codes.length === 0
    ? { ...years, calendars: {} }
    : tabulateHolidays(await loadHolidayCalendars(), codes, years);
};

const HOLIDAY_TABLE_MODULE = fileURLToPath(new URL('../shared/holiday-table.ts', import.meta.url));

/**
 * Replaces functions/<fn>/schedules-source.ts with the schedules document as it is now (infra/schedules.yml,
 * validated above) and the holiday table of the calendars it names: functions that reconcile carry their
 * schedules and holidays, never read them at run time, and do not bundle date-holidays.
 */
const embedSchedules = (table: HolidayTable): Plugin => ({
  name: 'embed-schedules',
  setup(b) {
    b.onResolve({ filter: /[/\\]schedules-source\.ts$/ }, (args) => ({
      path: args.path,
      namespace: 'embedded-schedules',
    }));
    b.onLoad({ filter: /.*/, namespace: 'embedded-schedules' }, () => ({
      contents:
        `import { tableCalendars } from ${JSON.stringify(HOLIDAY_TABLE_MODULE)};\n` +
        `export const SCHEDULES_ORIGIN = ${JSON.stringify(`${SCHEDULES_FILE} (as built into this bundle)`)};\n` +
        `export const schedulesDocument = () => (${JSON.stringify(parse(readFileSync(SCHEDULES_FILE, 'utf8')))});\n` +
        `const calendars = tableCalendars(${JSON.stringify(table)});\n` +
        'export const scheduleCalendars = () => calendars;',
      loader: 'js',
      resolveDir: dirname(HOLIDAY_TABLE_MODULE),
    }));
  },
});

/** CommonJS dependencies inside an ES module bundle call require() for node built-ins. */
const REQUIRE_BANNER =
  "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);";

/**
 * esbuild writes the banner atop every chunk, and none of today's chunks calls require(): two per function
 * mention the word in a string (the SDK's Node version warning, a hint to install signature-v4-crt). A
 * chunk keeps the banner whenever the word appears anywhere else in it, so a CommonJS dependency added
 * later keeps its require(); the rest drop it: about 2 KiB of every cold start.
 */
const dropUnusedBanners = (dir: string) => {
  for (const file of readdirSync(dir, { recursive: true }) as string[]) {
    if (!file.endsWith('.mjs')) continue;
    const path = join(dir, file);
    const source = readFileSync(path, 'utf8');
    if (!source.startsWith(`${REQUIRE_BANNER}\n`))
      throw new Error(`${path}: built without the require banner`);
    const rest = source.slice(REQUIRE_BANNER.length + 1);
    if (!/\brequire\b/.test(rest)) writeFileSync(path, rest);
  }
};

const main = async () => {
  // An invalid schedules file fails the build before anything is built, naming the schedule and field.
  let schedules: Schedules;
  try {
    schedules = await loadSchedulesFile(SCHEDULES_FILE);
  } catch (error) {
    console.error(`build failed: ${(error as Error).message}`);
    process.exit(1);
  }
  const table = await holidayTable(schedules);
  rmSync('dist', { recursive: true, force: true });
  for (const name of functionNames()) {
    const outfile = join('dist', name, 'index.mjs');
    await build({
      // Split: what a function imports on demand (the fleet's STS, IAM, Organizations and Lambda calls,
      // needed only when an event names a target) lands in dist/<fn>/chunks/ and is never parsed by a run
      // without one. dist/<fn>/ is the unit Lambda gets (serverless.yml packages dist/<fn>/**).
      entryPoints: { index: join('functions', name, 'handler.ts') },
      outdir: join('dist', name),
      splitting: true,
      chunkNames: 'chunks/[name]-[hash]',
      outExtension: { '.js': '.mjs' },
      bundle: true,
      minify: true,
      treeShaking: true,
      platform: 'node',
      target: 'node22',
      format: 'esm',
      // ESM-first resolution lets esbuild tree-shake the SDK's ES modules: half the size and import time.
      mainFields: ['module', 'main'],
      legalComments: 'none',
      // CommonJS dependencies inside an ES module bundle call require() for node built-ins.
      banner: { js: REQUIRE_BANNER },
      // Only the schemas of the operations a function sends, the modelled error classes built by one
      // factory, and the SDK's imports pointed past its barrels, so that on-demand code stays out of the
      // cold start (scripts/direct-sdk-imports.ts leanFunctionSdk).
      plugins: [embedSchedules(table), leanFunctionSdk(), sdkPackageVersions()],
      logLevel: 'warning',
    });
    dropUnusedBanners(join('dist', name));
    console.log(`${outfile}  ${(statSync(outfile).size / 1024).toFixed(1)} KiB`);
  }
  // The fleet state machines' definitions (infra/fleet.yml reads them with DefinitionSubstitutions).
  mkdirSync(FLEET_ASL_DIR, { recursive: true });
  for (const fn of FLEET_FUNCTIONS)
    writeFileSync(join(FLEET_ASL_DIR, `${fn}.json`), `${JSON.stringify(templateDefinition(fn), null, 2)}\n`);
  console.log(`${FLEET_ASL_DIR}/*.json  ${FLEET_FUNCTIONS.length} fleet state machine definitions`);
  // The nightshift CLI (package.json bin): every function's handler, for --local. Split: what the CLI
  // imports on demand (the holiday calendars, shared/holiday-loader.ts: 1.4 MiB; each function's
  // handler; AWS SDK clients; the prompt and the spinner) goes to dist/cli/chunks/, so `nightshift --help`
  // and every command that needs none of it never parse it: the bin's static imports are the command
  // definitions (about 60 KiB; test/integration/cli-startup.test.ts keeps them so). dist/cli/ is the
  // unit to copy: the bin imports its chunks beside it.
  const cli = join('dist', 'cli', 'nightshift.mjs');
  await build({
    entryPoints: { nightshift: join('scripts', 'cli', 'main.ts') },
    outdir: join('dist', 'cli'),
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    outExtension: { '.js': '.mjs' },
    bundle: true,
    minify: true,
    platform: 'node',
    target: 'node20.19',
    format: 'esm',
    mainFields: ['module', 'main'],
    legalComments: 'none',
    plugins: [embedServerless(), embedSchedules(table)],
    banner: {
      js: "#!/usr/bin/env node\nimport { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
    },
    logLevel: 'warning',
  });
  chmodSync(cli, 0o755);
  const chunks = readdirSync(join('dist', 'cli', 'chunks'));
  const chunkBytes = chunks.reduce((sum, f) => sum + statSync(join('dist', 'cli', 'chunks', f)).size, 0);
  console.log(
    `${cli}  ${(statSync(cli).size / 1024).toFixed(1)} KiB (+ ${chunks.length} chunks, ${(chunkBytes / 1024).toFixed(1)} KiB)`,
  );
};

await main();
