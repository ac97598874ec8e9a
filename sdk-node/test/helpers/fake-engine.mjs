// A scripted stand-in for the engine's Connect stream, to test the worker protocol alone.
//
// Invariant: it speaks only the wire contract (the package's own proto definitions) and
// records every message a worker sends, per stream, in arrival order — as protobufjs
// message instances (unset message fields are null, `kind` names the set member).
// Unary methods (Engine: Trigger, EnqueueBatch; Queues: GetJob, CancelJob) are served only
// when the test passes a handler for them; any other call is UNIMPLEMENTED, as on an
// engine that lacks it.
import * as grpc from '@grpc/grpc-js';
import { methods } from '../../dist/proto.js';
import { toValueBytes } from '../../dist/value.js';
import { Collector } from './wait.mjs';

export class FakeEngine {
  /** One entry per accepted stream: { call, messages: Collector, ended: Promise }. */
  streams = new Collector();
  #server;
  #unary;
  port = 0;

  /**
   * `unary`: optional `{ Trigger, EnqueueBatch, GetJob, CancelJob }` handlers, each `(request) => response`
   * (a plain object) or a thrown/returned `{ code, details }` status to fail the call with.
   */
  constructor(unary = {}) {
    this.#unary = unary;
  }

  /** Listens on 127.0.0.1:port (0 = any). */
  async start(port = 0) {
    this.#server = new grpc.Server();
    const definitions = { Connect: methods.connect };
    const handlers = { Connect: (call) => this.#accept(call) };
    const unaryMethods = [
      ['Trigger', methods.trigger],
      ['EnqueueBatch', methods.enqueueBatch],
      ['GetJob', methods.getJob],
      ['CancelJob', methods.cancelJob],
    ];
    for (const [name, definition] of unaryMethods) {
      const handler = this.#unary[name];
      if (!handler) continue;
      definitions[name] = definition;
      handlers[name] = async (call, callback) => {
        try {
          const answer = await handler(call.request);
          if (answer && typeof answer.code === 'number') callback(answer);
          else callback(null, answer);
        } catch (status) {
          callback(status);
        }
      };
    }
    this.#server.addService(definitions, handlers);
    this.port = await new Promise((resolve, reject) =>
      this.#server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
        error ? reject(error) : resolve(bound),
      ),
    );
    return this;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The n-th stream (0-based) once it exists. */
  async stream(n = 0) {
    const streams = await this.streams.waitFor(n + 1, 10_000, `worker stream #${n}`);
    return streams[n];
  }

  /** Drops every connection at once, like a crashed engine. */
  crash() {
    this.#server?.forceShutdown();
  }

  #accept(call) {
    const messages = new Collector();
    let endedResolve;
    const ended = new Promise((resolve) => (endedResolve = resolve));
    call.on('data', (message) => {
      messages.push(message);
      if (message.register_function) call.write({ registered: { function_id: message.register_function.function_id } });
      if (message.hello) {
        call.write({ welcome: { worker_id: `w${this.streams.items.length}`, max_in_flight: message.hello.max_in_flight || 64 } });
      }
    });
    call.on('end', () => {
      endedResolve();
      call.end();
    });
    call.on('error', () => endedResolve());
    this.streams.push({ call, messages, ended });
  }
}

/** An Invoke message as the engine would send it. */
export function invoke(invocationId, functionId, payload, delivery) {
  const message = { invoke: { invocation_id: invocationId, function_id: functionId, payload: toValueBytes(payload) } };
  if (delivery) message.invoke.delivery = delivery;
  return message;
}

/** An InvokeBatch message carrying the `invoke` members of `messages` (built with invoke()). */
export function invokes(messages) {
  return { invokes: { invokes: messages.map((m) => m.invoke) } };
}

/** Every result a stream carried, lone (`result`) or batched (`results`), in arrival order. */
export function allResults(messages) {
  return messages.items.flatMap((m) => (m.result ? [m.result] : m.results ? m.results.results : []));
}

/** The results among a stream's messages (lone or batched), by invocation id. */
export function resultsOf(messages) {
  return new Map(allResults(messages).map((r) => [r.invocation_id, r]));
}
