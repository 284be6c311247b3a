/**
 * The `nightshift` command (package.json bin). Built to dist/cli/nightshift.mjs by `npm run build`;
 * `npm run cli -- <args>` runs it from source.
 */
import './defaults.ts';
import confirm from '@inquirer/confirm';
import ora from 'ora';
import { runCli } from './program.ts';

const interactive = process.stdin.isTTY === true && process.stderr.isTTY === true;

const code = await runCli(process.argv.slice(2), {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  interactive,
  confirm: (message) => confirm({ message, default: false }, { output: process.stderr }),
  progress: (text) => {
    const spinner = ora({ text, stream: process.stderr }).start();
    return () => spinner.stop();
  },
  width: process.stdout.columns ?? 120,
  env: process.env,
});
process.exitCode = code;
