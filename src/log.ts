// Logger factory shared by every command: JSON lines on stdout (pino), one line per event.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string = 'info', name?: string): Logger {
  return pino({
    level,
    base: name ? { name } : undefined,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
  });
}
