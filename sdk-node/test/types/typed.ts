// Compile-time checks of the typed API (tsc --noEmit, run by check.sh): each line under an
// expect-error directive must not compile, everything else must.
import { functionRef, registerWorker, type FunctionRef, type JsonValue } from '@switchyard/sdk';

type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const expectType = <T extends true>(_: T) => {};

const sy = registerWorker('127.0.0.1:49134', { handleSignals: false });

// A shared declaration checks the handler and the callers.
const add = functionRef<{ a: number; b: number }, { sum: number }>('math::add');
sy.registerFunction(add, ({ a, b }) => ({ sum: a + b }));
sy.registerFunction(add, async ({ a, b }) => ({ sum: a + b }));
// @ts-expect-error the handler must return { sum: number }
sy.registerFunction(add, ({ a, b }) => ({ total: a + b }));
// @ts-expect-error the payload has no field c
sy.registerFunction(add, ({ c }) => ({ sum: c }));

async function callers() {
  const result = await sy.call(add, { a: 1, b: 2 });
  expectType<Equal<typeof result, { sum: number }>>(true);
  // @ts-expect-error b must be a number
  await sy.call(add, { a: 1, b: 'two' });
  // @ts-expect-error b is missing
  await sy.enqueue('math', add, { a: 1 });
  const receipt = await sy.enqueue('math', add, { a: 1, b: 2 });
  expectType<Equal<typeof receipt.messageReceiptId, string>>(true);

  // The result type follows the handler registered under a string id.
  const double = sy.registerFunction('math::double', (payload: { x: number }) => ({ doubled: payload.x * 2 }));
  expectType<Equal<typeof double, FunctionRef<{ x: number }, { doubled: number }>>>(true);
  const doubled = await sy.call(double, { x: 2 });
  expectType<Equal<typeof doubled, { doubled: number }>>(true);
  const fromAsync = sy.registerFunction('math::later', async () => 42);
  expectType<Equal<typeof fromAsync, FunctionRef<any, number>>>(true);

  // Untyped string ids keep working and resolve to JSON.
  const untyped = await sy.call('math::add', { a: 1, b: 2 });
  expectType<Equal<typeof untyped, JsonValue>>(true);
  await sy.trigger({ function_id: add, payload: { a: 1, b: 2 } });
}
void callers;

// Token and TLS options (issue 16).
registerWorker('https://engine.example:49134', {
  handleSignals: false,
  token: 'secret',
  tls: { caFile: 'ca.pem', certFile: 'client.pem', keyFile: 'client-key.pem' },
});
// @ts-expect-error tls options are camelCase
registerWorker('https://engine.example:49134', { handleSignals: false, tls: { ca_file: 'ca.pem' } });
