/** A moving average of a time (ms) per actor, each new sample weighted 1/`smoothing`. */
export class ActorTimes {
  private readonly averages = new Map<string, number>();

  constructor(private readonly smoothing: number) {}

  /** The average so far, or undefined if the actor has not been measured. */
  get(actorName: string): number | undefined {
    return this.averages.get(actorName);
  }

  note(actorName: string, ms: number): void {
    const average = this.averages.get(actorName);
    this.averages.set(actorName, average === undefined ? ms : average + (ms - average) / this.smoothing);
  }
}
