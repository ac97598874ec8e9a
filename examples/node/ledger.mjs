// Scenario 2 — a financial ledger on the fifo queue `ledger`, grouped by `account_id`
// (examples/README.md).
//
// Deposits and withdrawals of one account apply in the order they were submitted: a
// withdrawal that would overdraw fails and is retried, so it must never run before the
// deposit submitted ahead of it. acct_A's first deposit hits a transient outage on its
// first attempt: the engine retries it in place (500 ms later) and acct_A's withdrawal waits
// behind it, while acct_B and acct_C carry on. At the end the balances are checked.
//
//   node ledger.mjs
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { registerWorker, TriggerAction } from '@switchyard/sdk';

class InsufficientFunds extends Error { name = 'InsufficientFunds'; }
class Transient extends Error { name = 'Transient'; }

const OPS = [['acct_A', 'deposit', 100], ['acct_A', 'withdraw', 80], ['acct_B', 'deposit', 50],
  ['acct_C', 'deposit', 10], ['acct_B', 'withdraw', 20], ['acct_A', 'deposit', 5],
  ['acct_C', 'withdraw', 10], ['acct_A', 'withdraw', 25], ['acct_B', 'deposit', 5]];

const balances = {};
const journal = []; // every attempt in order: { account, seq, applied }
let overdraftsRefused = 0;

const sy = registerWorker(process.env.SWITCHYARD_URL ?? 'http://127.0.0.1:49134');
sy.registerFunction('ledger::apply', async (op, ctx) => {
  await sleep(10); // the database round trip
  const { account_id: account, seq } = op;
  if (op.outage && ctx.attempt === 1) {
    journal.push({ account, seq, applied: false });
    throw new Transient('ledger database timed out');
  }
  const balance = balances[account] ?? 0;
  const delta = op.kind === 'deposit' ? op.amount : -op.amount;
  if (balance + delta < 0) {
    overdraftsRefused += 1;
    journal.push({ account, seq, applied: false });
    throw new InsufficientFunds(`${account} has ${balance}, cannot withdraw ${op.amount}`);
  }
  balances[account] = balance + delta;
  journal.push({ account, seq, applied: true });
  console.log(`${account} #${seq} ${op.kind} ${op.amount} -> balance ${balances[account]} (attempt ${ctx.attempt})`);
  return { applied: true };
});
await sy.ready();

const expected = {};
for (const [seq, [account, kind, amount]] of OPS.entries()) {
  await sy.trigger({
    function_id: 'ledger::apply',
    payload: { account_id: account, seq, kind, amount, outage: seq === 0 },
    action: TriggerAction.Enqueue({ queue: 'ledger' }),
  });
  expected[account] = (expected[account] ?? 0) + (kind === 'deposit' ? amount : -amount);
}

const deadline = Date.now() + 30_000;
while (journal.filter((j) => j.applied).length < OPS.length && Date.now() < deadline) await sleep(50);
await sy.shutdown();

console.log('balances:', balances);
assert.deepEqual(balances, expected, 'balances');
for (const account of Object.keys(expected)) {
  const applied = journal.filter((j) => j.account === account && j.applied).map((j) => j.seq);
  assert.deepEqual(applied, [...applied].sort((a, b) => a - b), `${account} applied out of order`);
}
assert.equal(overdraftsRefused, 0, 'a withdrawal ran before the deposit submitted ahead of it');
const outage = journal.findIndex((j) => j.account === 'acct_A' && !j.applied);
const recovered = journal.findIndex((j) => j.account === 'acct_A' && j.applied);
assert.ok(journal.slice(outage, recovered).some((j) => j.account !== 'acct_A'), 'other accounts should proceed while acct_A waits');
console.log("check ok: per-account order kept, balances correct, other accounts proceeded during acct_A's retry");
