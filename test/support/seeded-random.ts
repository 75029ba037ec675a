/**
 * Randomness for tests that can be replayed: a seeded generator (mulberry32) whose seed comes from
 * TEST_SEED or is drawn at random, and is printed, so a failing run can be repeated exactly with
 * TEST_SEED=<seed> npx vitest run <file>.
 */
import { randomInt } from "node:crypto";

export interface SeededRandom {
  readonly seed: number;
  /** A float in [0, 1). */
  next(): number;
  /** An integer in [0, n). */
  int(n: number): number;
  pick<T>(items: readonly T[]): T;
}

export function seededRandom(name: string): SeededRandom {
  const fromEnv = process.env.TEST_SEED;
  const seed = fromEnv !== undefined && /^\d+$/.test(fromEnv) ? Number(fromEnv) >>> 0 : randomInt(2 ** 32);
  // Printed for every run, not only failures: a flaky failure is found by reading the log of the run that failed.
  console.log(`[${name}] random seed ${seed} (replay with TEST_SEED=${seed})`);
  const next = mulberry32(seed);
  return {
    seed,
    next,
    int: (n) => Math.floor(next() * n),
    pick: (items) => items[Math.floor(next() * items.length)]!,
  };
}

/** mulberry32: a small deterministic generator of floats in [0, 1), the same sequence for the same seed. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
