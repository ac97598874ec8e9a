/**
 * Typed function references: one declaration of a function's payload and result types,
 * shared by the worker that serves it and the callers that call it.
 *
 * Invariant: a FunctionRef is only its id at run time (`ref.id`, and `String(ref)`); the
 * types exist for the compiler alone, so the wire and the engine see exactly what a
 * string id would give them.
 *
 *   export const add = functionRef<{ a: number; b: number }, { sum: number }>('math::add')
 *   worker.registerFunction(add, ({ a, b }) => ({ sum: a + b }))   // handler checked against the types
 *   const { sum } = await caller.call(add, { a: 1, b: 2 })        // payload checked, result typed
 *   await caller.enqueue('math', add, { a: 1, b: 2 })
 *
 * Not done: nothing is checked at run time — a payload is whatever JSON arrives.
 */

declare const types: unique symbol;

export class FunctionRef<P = unknown, R = unknown> {
  /** Phantom: carries P and R for the compiler; never set. */
  declare readonly [types]?: (payload: P) => R;

  constructor(readonly id: string) {}

  toString(): string {
    return this.id;
  }
}

/** A reference to function `id` taking payload P and resolving to R. */
export function functionRef<P = unknown, R = unknown>(id: string): FunctionRef<P, R> {
  return new FunctionRef<P, R>(id);
}

/** The id of a string or a FunctionRef. */
export function idOf(fn: string | FunctionRef<any, any>): string {
  return typeof fn === 'string' ? fn : fn.id;
}
