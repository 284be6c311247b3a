/**
 * vitest globalSetup of the projects that run Python tools (integration: moto_server; meta: cfn-lint):
 * finds them on PATH or in the project's cache, or installs them there once (scripts/tools.ts), before
 * any test file starts, so parallel test files never race to install, and hands the resolved command to
 * the test workers (NIGHTSHIFT_MOTO_SERVER / NIGHTSHIFT_CFN_LINT: the workers inherit this process's
 * environment), so no test file probes again. When it cannot, the run stops here with the one line
 * that says what to install: nothing is skipped.
 */
import { ensureTool, ToolUnavailableError, TOOLS, type Tool } from '#scripts/tools.ts';

export const toolsSetup = (tools: readonly Tool[]) => async () => {
  for (const tool of tools) {
    try {
      process.env[TOOLS[tool].override] = await ensureTool(tool);
    } catch (error) {
      if (!(error instanceof ToolUnavailableError)) throw error;
      console.error(`nightshift: ${error.message}`);
      process.exit(1);
    }
  }
};
