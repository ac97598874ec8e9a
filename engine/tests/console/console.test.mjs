// The web console in a real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core): the queue page shows the right counts, a dead letter shows its error,
// redrive (confirmed) moves it back and the job runs, discard asks first. A screenshot of
// each page is kept under target/console-screenshots/.
//
// Needs the engine binary ($SWITCHYARD_BIN, else target/debug/switchyard) and the built
// Node SDK (the worker). Every wait is bounded.
import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { chromium } from 'playwright-core'
import { registerWorker, TriggerAction } from '@switchyard/sdk'

const ROOT = resolve(import.meta.dirname, '../../..')
const BIN = process.env.SWITCHYARD_BIN ?? join(ROOT, 'target/debug/switchyard')
const SHOTS = join(ROOT, 'target/console-screenshots')
const WAIT_MS = 20_000

const CONFIG = `
metrics_listen: ""
console_listen: 127.0.0.1:0
shutdown_grace_ms: 1000
queue_configs:
  orders: {max_retries: 1, backoff_ms: 10}
  idle: {}
`

let engine, grpcUrl, consoleUrl, sy, browser, page, dir
let fixed = false
class PaymentDeclined extends Error {}
const ran = []

/** Starts the engine and reads its address lines (bounded). */
async function startEngine() {
  dir = mkdtempSync(join(tmpdir(), 'switchyard-console-'))
  const config = join(dir, 'iii-config.yaml')
  writeFileSync(config, CONFIG)
  engine = spawn(BIN, ['serve', '--config', config, '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] })
  const lines = createInterface({ input: engine.stdout })
  const addresses = {}
  await new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error('the engine did not print its addresses')), WAIT_MS)
    lines.on('line', (line) => {
      const m = line.match(/^switchyard (listening|console) on (\S+)$/)
      if (m) addresses[m[1]] = m[2]
      if (addresses.listening && addresses.console) {
        clearTimeout(timer)
        done()
      }
    })
    engine.once('exit', (code) => fail(new Error(`the engine exited (${code})`)))
  })
  grpcUrl = `http://${addresses.listening}`
  consoleUrl = `http://${addresses.console}`
}

/** Polls `check` until it returns a truthy value, at most WAIT_MS. */
async function eventually(what, check) {
  const deadline = Date.now() + WAIT_MS
  for (;;) {
    const v = await check()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 25))
  }
}

const stats = async (queue) => (await sy.listQueues()).find((q) => q.name === queue).stats
const enqueue = (queue, fn, payload) =>
  sy.trigger({ function_id: fn, payload, action: TriggerAction.Enqueue({ queue }) })

before(async () => {
  mkdirSync(SHOTS, { recursive: true })
  await startEngine()
  sy = registerWorker(grpcUrl, { shutdownGraceMs: 1000 })
  sy.registerFunction('orders::ship', async () => ({ shipped: true }))
  sy.registerFunction('orders::charge', async (payload) => {
    if (!fixed) throw new PaymentDeclined('card processor refused: insufficient funds')
    ran.push(payload.orderId)
    return { charged: true }
  })
  sy.registerFunction('orders::audit', async () => {
    throw new Error('audit log is read-only')
  })
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run'],
  })
  page = await browser.newPage({ viewport: { width: 1280, height: 720 } })
  page.setDefaultTimeout(WAIT_MS)
})

after(async () => {
  await browser?.close()
  await sy?.shutdown()
  engine?.kill('SIGTERM')
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const cell = (queue, stat) => page.locator(`tr[data-queue="${queue}"] [data-stat="${stat}"]`)

test('the queues page shows every queue with its counts', async () => {
  await enqueue('orders', 'orders::ship', { orderId: 'ord_1' })
  await enqueue('orders', 'orders::ship', { orderId: 'ord_2' })
  await enqueue('orders', 'orders::charge', { orderId: 'ord_3' })
  await enqueue('idle', 'nobody::serves', { n: 1 })
  await eventually('ord_3 dead-lettered', async () => (await stats('orders')).dead === 1)

  await page.goto(consoleUrl + '/')
  assert.equal(await page.title(), 'Queues · Switchyard')
  const want = { ready: '0', delayed: '0', in_flight: '0', dead: '1', enqueued: '3', completed: '2', failed: '2', dead_lettered: '1' }
  for (const [stat, value] of Object.entries(want)) {
    assert.equal(await cell('orders', stat).textContent(), value, `orders ${stat}`)
  }
  assert.equal(await cell('idle', 'ready').textContent(), '1')
  await page.screenshot({ path: join(SHOTS, '1-queues.png'), fullPage: true })

  // Live: a job enqueued now shows without reloading the page (it re-reads every 2 s).
  let reloaded = false
  page.once('load', () => { reloaded = true })
  await enqueue('orders', 'orders::ship', { orderId: 'ord_5' })
  await page.locator('tr[data-queue="orders"] [data-stat="completed"]', { hasText: '3' }).waitFor()
  assert.equal(await cell('orders', 'enqueued').textContent(), '4')
  assert.equal(reloaded, false, 'the numbers changed in place')
})

test('a dead letter shows its error; redrive, confirmed, moves it back and the job runs', async () => {
  await page.click('a[href="/queue?name=orders"]')
  await page.waitForURL('**/queue?name=orders')
  const row = page.locator('table.dead tbody tr')
  assert.equal(await row.count(), 1)
  assert.equal(await row.locator('.code').textContent(), 'PaymentDeclined')
  assert.equal(await row.locator('.message').textContent(), 'card processor refused: insufficient funds')
  assert.equal(await row.locator('td.n').textContent(), '2', 'attempts')
  assert.match(await row.locator('.payload').textContent(), /"orderId":"ord_3"/)
  await page.screenshot({ path: join(SHOTS, '2-queue-dead-letters.png'), fullPage: true })

  // Declining the confirmation sends nothing.
  page.once('dialog', (d) => d.dismiss())
  await row.locator('button', { hasText: 'Redrive' }).click()
  assert.equal((await stats('orders')).dead, 1, 'a declined redrive changes nothing')

  fixed = true
  let question
  page.once('dialog', (d) => {
    question = d.message()
    d.accept()
  })
  await Promise.all([page.waitForURL('**/queue?name=orders&notice=*'), row.locator('button', { hasText: 'Redrive' }).click()])
  assert.match(question, /^Redrive job .+\?$/)
  assert.equal(await page.locator('.notice').textContent(), 'Redrove 1 dead letter')
  await eventually('the redriven job ran', () => ran.includes('ord_3'))
  await page.locator('[data-stat="completed"]', { hasText: '4' }).waitFor()
  assert.equal(await page.locator('[data-stat="dead"]').textContent(), '0')
  await page.screenshot({ path: join(SHOTS, '3-queue-after-redrive.png'), fullPage: true })
})

test('discard asks first and deletes the dead letter', async () => {
  await enqueue('orders', 'orders::audit', { orderId: 'ord_4' })
  await eventually('ord_4 dead-lettered', async () => (await stats('orders')).dead === 1)
  await page.goto(consoleUrl + '/queue?name=orders')
  const row = page.locator('table.dead tbody tr')
  assert.equal(await row.locator('.message').textContent(), 'audit log is read-only')
  page.once('dialog', (d) => d.accept())
  await Promise.all([page.waitForURL('**/queue?name=orders&notice=*'), row.locator('button', { hasText: 'Discard' }).click()])
  assert.equal(await page.locator('.notice').textContent(), 'Discarded 1 dead letter')
  assert.equal(await page.locator('table.dead').count(), 0)
  assert.equal((await stats('orders')).dead, 0)
})

test('the workers page lists the connected worker and its functions', async () => {
  await page.click('nav a[href="/workers"]')
  const functions = await page.locator('ul.functions li').allTextContents()
  assert.deepEqual(functions, ['orders::audit', 'orders::charge', 'orders::ship'])
  await page.screenshot({ path: join(SHOTS, '4-workers.png'), fullPage: true })
})

test('an unknown queue is QUEUE_NOT_FOUND, and another site cannot post actions', async () => {
  const response = await page.goto(consoleUrl + '/queue?name=nope')
  assert.equal(response.status(), 404)
  assert.match(await page.locator('.notice').textContent(), /^QUEUE_NOT_FOUND: queue 'nope' is not defined/)
  const forged = await fetch(consoleUrl + '/queue/discard', {
    method: 'POST',
    headers: { origin: 'http://evil.example', 'content-type': 'application/x-www-form-urlencoded' },
    body: 'name=orders&all=1',
  })
  assert.equal(forged.status, 403)
})
