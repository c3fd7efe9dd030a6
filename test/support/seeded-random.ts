/** A deterministic random source in [0, 1) for randomized tests, so a failure names the seed that shows it. */
export function seededRandom(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}
