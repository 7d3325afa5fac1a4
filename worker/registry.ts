import { ActorNotFound, TroupeError } from "./errors.js";
import type { ActorOptions } from "./options.js";

/** What the registry needs of an actor; `Actor` implements it. */
export interface RegisteredActor {
  readonly actorName: string;
  readonly queueName: string;
  readonly declaredOptions: ActorOptions;
  readonly fn: (...args: never[]) => unknown;
}

/** Actors by name, plus option overrides published at run time (the operator's Actor resources). */
export class ActorRegistry {
  private readonly actors = new Map<string, RegisteredActor>();
  private overrides = new Map<string, ActorOptions>();

  register(actor: RegisteredActor): void {
    if (this.actors.has(actor.actorName)) {
      throw new TroupeError(`an actor named "${actor.actorName}" is already declared`);
    }
    this.actors.set(actor.actorName, actor);
  }

  get(name: string): RegisteredActor | undefined {
    return this.actors.get(name);
  }

  require(name: string): RegisteredActor {
    const actor = this.actors.get(name);
    if (!actor) throw new ActorNotFound(`no actor named "${name}" is declared in this worker`);
    return actor;
  }

  has(name: string): boolean {
    return this.actors.has(name);
  }

  /** Every declared actor. */
  list(): RegisteredActor[] {
    return [...this.actors.values()];
  }

  queues(): string[] {
    return [...new Set([...this.actors.values()].map((a) => a.queueName))];
  }

  /** Replace all overrides at once (the operator publishes the whole set). */
  setOverrides(overrides: Record<string, ActorOptions>): void {
    this.overrides = new Map(Object.entries(overrides));
  }

  /** The actor's declared options with run-time overrides applied on top. */
  optionsOf(name: string): ActorOptions | undefined {
    const actor = this.actors.get(name);
    if (!actor) return undefined;
    const override = this.overrides.get(name);
    return override ? { ...actor.declaredOptions, ...override } : actor.declaredOptions;
  }
}

/** The registry `actor()` declares into, one per thread. */
export const defaultRegistry = new ActorRegistry();
