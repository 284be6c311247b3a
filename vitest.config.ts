import { defineConfig } from 'vitest/config';

// Logs and EMF metrics would flood the test output; the observability tests turn them back on.
const env = {
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  POWERTOOLS_LOG_LEVEL: 'SILENT',
  POWERTOOLS_METRICS_DISABLED: 'true',
};

export default defineConfig({
  test: {
    // The JSON report lets .ci/run print a plain 'N passed, N failed' line.
    reporters: ['default', ['json', { outputFile: 'coverage/vitest-results.json' }]],
    projects: [
      // Pure tests, but some import whole function folders or fold thousands of rows: on a loaded machine
      // they pass 5 s. A limit for hangs, not a measure of speed (benchmarks measure that).
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], env, testTimeout: 30_000 } },
      { test: { name: 'component', include: ['test/component/**/*.test.ts'], env, testTimeout: 60_000 } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          env,
          // moto_server from PATH or the project's cache, installed there once if need be (scripts/tools.ts).
          globalSetup: ['test/support/setup-moto.ts'],
          testTimeout: 120_000,
          hookTimeout: 90_000,
        },
      },
      {
        test: {
          name: 'meta',
          include: ['test/meta/**/*.test.ts'],
          env,
          globalSetup: ['test/support/setup-cfn-lint.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
});
