/**
 * vitest globalSetup of the projects that run Python tools (integration: moto_server; meta: cfn-lint):
 * finds them on PATH or in the project's cache, or installs them there once (scripts/tools.ts), before
 * any test file starts, so parallel test files never race to install. When that cannot be done, the
 * run stops here with the one line that says what to install.
 */
import { ensureTool, ToolUnavailableError, type Tool } from '#scripts/tools.ts';

export const toolsSetup = (tools: readonly Tool[]) => async () => {
  for (const tool of tools) {
    try {
      await ensureTool(tool);
    } catch (error) {
      if (!(error instanceof ToolUnavailableError)) throw error;
      console.error(`nightshift: ${error.message}`);
      // The one line is the whole message: no stack trace for a missing tool.
      const stop = new Error(error.message);
      stop.stack = `${stop.name}: ${stop.message}`;
      throw stop;
    }
  }
};
