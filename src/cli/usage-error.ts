// A mistake in how a command was called (a flag, an env var, a config file): one line on stderr and
// exit code 2 (runMain), never a stack trace.
export class UsageError extends Error {}
