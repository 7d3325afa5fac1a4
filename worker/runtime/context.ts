import { AsyncLocalStorage } from "node:async_hooks";
import type { Message } from "../message.js";

/** What an actor can learn about the message it is running. */
export interface ActorContext {
  readonly message: Message;
  /** Aborted when the message runs past its time limit, or when the worker stops and the actor asked to be told. */
  readonly signal: AbortSignal;
}

export const actorContext = new AsyncLocalStorage<ActorContext>();

/**
 * The context in a plain variable, far cheaper than the storage (see callActor in thread-entry.ts): a sync
 * actor's while it runs, or, on a thread that runs one message at a time, that message's until it ends.
 */
let plainContext: ActorContext | undefined;

export function runWithSyncContext<T>(context: ActorContext, fn: () => T): T {
  plainContext = context;
  try {
    return fn();
  } finally {
    plainContext = undefined;
  }
}

/** The context of the one message a thread runs, from its start to its end (undefined between messages). */
export function setSoleContext(context: ActorContext | undefined): void {
  plainContext = context;
}

function currentContext(): ActorContext | undefined {
  return plainContext ?? actorContext.getStore();
}

let shuttingDown = false;
const shutdownListeners = new Set<() => void>();

/** The message the calling actor is processing, or undefined outside an actor (Dramatiq's CurrentMessage). */
export function getCurrentMessage(): Message | undefined {
  return currentContext()?.message;
}

/** The abort signal of the calling actor's message; an async actor should pass it to its I/O. */
export function getAbortSignal(): AbortSignal | undefined {
  return currentContext()?.signal;
}

/** True once the worker has begun a graceful shutdown. */
export function isShuttingDown(): boolean {
  return shuttingDown;
}

/** Be told when the worker begins a graceful shutdown; returns an unsubscribe function. */
export function onShutdown(listener: () => void): () => void {
  if (shuttingDown) queueMicrotask(listener);
  else shutdownListeners.add(listener);
  return () => shutdownListeners.delete(listener);
}

export function markShuttingDown(): void {
  if (shuttingDown) return;
  shuttingDown = true;
  for (const listener of shutdownListeners) listener();
  shutdownListeners.clear();
}
