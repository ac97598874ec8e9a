/**
 * NonRetryableError: a handler's way to say "this will never succeed, do not retry".
 *
 * Invariant: a handler failure is non-retryable exactly when the thrown value carries
 * this module's brand (a `NonRetryableError`, or an instance of a subclass) — then its
 * FunctionError has `non_retryable: true`, and the engine sends a queued job straight to
 * the DLQ with that error, whatever retry budget is left. The brand is a registered
 * symbol rather than `instanceof`, so an error built by the package's other build (ESM
 * vs CommonJS) still counts. Its code is the class's name (`NonRetryableError`, or the
 * subclass's), as for any handler error.
 *
 *   throw new NonRetryableError('card number is invalid')
 *
 * For a synchronous call it fails the call like any error (there is nothing to retry).
 */
const BRAND = Symbol.for('switchyard.nonRetryable');

export class NonRetryableError extends Error {
  constructor(message?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

Object.defineProperty(NonRetryableError.prototype, BRAND, { value: true });

/** True for a NonRetryableError (of either build, or a subclass). */
export function isNonRetryable(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[BRAND] === true;
}
