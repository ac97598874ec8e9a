/**
 * The SDK's log records, through a logger the application injects.
 *
 * Invariant: the SDK is silent unless the application passes `logger`; a record goes to
 * the logger's method of its level as `(message, fields)`, so `console` works as it is;
 * a logger method that is missing drops that level, and one that throws never breaks the
 * worker. Fields use the engine's names (`queue`, `function_id`, `message_receipt_id`,
 * `attempt`, `outcome`, `duration_ms`, `error_code`; `url`, `cause`, `retry_in_ms` for the
 * connection) and never carry a payload.
 */

/** Structured fields of one record; undefined values are left out. */
export type LogFields = Record<string, string | number | boolean | undefined>;

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** What the `logger` option takes: `console`, or any object with these methods (each optional). */
export type Logger = { [L in LogLevel]?: (message: string, fields: LogFields) => void };

/** The injected logger behind a guard: `enabled(level)` is cheap, `log` never throws. */
export class Log {
  private readonly sink: Logger;

  constructor(logger: Logger | undefined) {
    if (logger !== undefined && (logger === null || typeof logger !== 'object')) {
      throw new TypeError('switchyard: the logger option takes an object with debug/info/warn/error methods, e.g. console');
    }
    this.sink = logger ?? {};
  }

  /** True when the logger has a method for `level`: lets hot paths skip building fields. */
  enabled(level: LogLevel): boolean {
    return typeof this.sink[level] === 'function';
  }

  debug(message: string, fields: LogFields): void {
    this.write('debug', message, fields);
  }

  info(message: string, fields: LogFields): void {
    this.write('info', message, fields);
  }

  warn(message: string, fields: LogFields): void {
    this.write('warn', message, fields);
  }

  error(message: string, fields: LogFields): void {
    this.write('error', message, fields);
  }

  private write(level: LogLevel, message: string, fields: LogFields): void {
    const method = this.sink[level];
    if (typeof method !== 'function') return;
    const defined: LogFields = {};
    for (const key in fields) if (fields[key] !== undefined) defined[key] = fields[key];
    try {
      method.call(this.sink, message, defined);
    } catch {
      // A broken logger must not take the worker down with it.
    }
  }
}

