/**
 * Environment defaults for the CLI, imported before anything else. The functions' own structured logs
 * and EMF metrics go to stdout, where they would mix with the report (and break --json) when a handler
 * runs in-process with --local; the SDK's notice about its future Node 22 requirement is not for ops at
 * 3 a.m. Each can still be set explicitly.
 */
process.env.POWERTOOLS_LOG_LEVEL ??= 'SILENT';
process.env.POWERTOOLS_METRICS_DISABLED ??= 'true';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
