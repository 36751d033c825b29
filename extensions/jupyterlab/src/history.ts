/**
 * Short per-GPU histories for sparklines, fed by the GPU stream. Pure, unit tested.
 */

/** The part of a GPU reading a history keeps. */
export interface ReadingLike {
  index: number;
  host: string;
  utilization_gpu: number | null;
  memory_used: number | null;
  memory_total: number | null;
}

/** One GPU's recent utilization and memory use, both in percent, oldest first. */
export interface GpuHistory {
  utilization: (number | null)[];
  memory: (number | null)[];
}

/** The key of a GPU across samples. */
export function gpuHistoryKey(reading: ReadingLike): string {
  return `${reading.host}/${reading.index}`;
}

/** Memory use in percent of the total, or null when either is unknown. */
export function memoryPercent(reading: ReadingLike): number | null {
  if (reading.memory_used === null || !reading.memory_total) {
    return null;
  }
  return (100 * reading.memory_used) / reading.memory_total;
}

/**
 * Append one sample's readings to the histories (keeping `limit` points each);
 * GPUs that left the sample are dropped. Returns a new map.
 */
export function appendSample(
  histories: ReadonlyMap<string, GpuHistory>,
  readings: readonly ReadingLike[],
  limit: number
): Map<string, GpuHistory> {
  const next = new Map<string, GpuHistory>();
  for (const reading of readings) {
    const key = gpuHistoryKey(reading);
    const before = histories.get(key) ?? { utilization: [], memory: [] };
    next.set(key, {
      utilization: [...before.utilization, reading.utilization_gpu].slice(-limit),
      memory: [...before.memory, memoryPercent(reading)].slice(-limit)
    });
  }
  return next;
}

/** The status-bar text for a sample: mean utilization and memory over all GPUs. */
export function gpuSummary(sample: { available: boolean; simulated: boolean; gpus: readonly ReadingLike[] }): string {
  if (!sample.available || sample.gpus.length === 0) {
    return 'GPU: none';
  }
  const utils = sample.gpus.map(g => g.utilization_gpu).filter((v): v is number => v !== null);
  const used = sample.gpus.reduce((sum, g) => sum + (g.memory_used ?? 0), 0);
  const total = sample.gpus.reduce((sum, g) => sum + (g.memory_total ?? 0), 0);
  const util = utils.length ? `${Math.round(utils.reduce((a, b) => a + b, 0) / utils.length)}%` : 'n/a';
  const memory = total ? ` · mem ${Math.round((100 * used) / total)}%` : '';
  const count = sample.gpus.length > 1 ? `${sample.gpus.length}× ` : '';
  return `${count}GPU ${util}${memory}${sample.simulated ? ' (simulated)' : ''}`;
}
