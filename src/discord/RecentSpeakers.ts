/** Bounds of {@link RecentSpeakers}. */
export interface RecentSpeakersOptions {
  /** Names kept per server (or DM), the least recently seen dropped first. Default 200. */
  namesPerPlace?: number;
  /** Servers (and DMs) kept, the least recently active dropped first. Default 1000. */
  places?: number;
}

/**
 * The display names of the people who wrote recently, per server (a DM is a place of its own). A
 * small model sometimes opens a reply with the name of someone who is not in its prompt ("person2:
 * My cat's name is Fluffy."), borrowed from elsewhere in the server; these names count as speakers
 * so that prefix is stripped too. Words that open a reply ("Warning:", "Step 1:") are nobody's
 * name here and stay. Memory is bounded: `places` × `namesPerPlace` names at most.
 */
export class RecentSpeakers {
  private readonly names = new Map<string, Map<string, true>>();
  private readonly namesPerPlace: number;
  private readonly places: number;

  constructor({ namesPerPlace = 200, places = 1000 }: RecentSpeakersOptions = {}) {
    this.namesPerPlace = namesPerPlace;
    this.places = places;
  }

  /** Notes that `name` wrote in `place` (a guild id, or a DM channel's id). */
  seen(place: string, name: string): void {
    const names = this.names.get(place) ?? new Map<string, true>();
    // Map order is the recency order: delete and set again to move to the end.
    this.names.delete(place);
    this.names.set(place, names);
    names.delete(name);
    names.set(name, true);
    if (names.size > this.namesPerPlace) names.delete(names.keys().next().value!);
    if (this.names.size > this.places) this.names.delete(this.names.keys().next().value!);
  }

  /** The names seen in `place`, most recent last. */
  in(place: string): string[] {
    return [...(this.names.get(place)?.keys() ?? [])];
  }
}
