/**
 * SVG path geometry for sparklines and metric charts: pure functions, unit tested.
 */

/** An SVG path through `values` in a `width` x `height` box (0 at the bottom, `max` at the top). */
export function sparklinePath(values: readonly (number | null)[], width: number, height: number, max = 100): string {
  if (values.length === 0 || max <= 0) {
    return '';
  }
  const step = values.length > 1 ? width / (values.length - 1) : 0;
  const parts: string[] = [];
  let drawing = false;
  values.forEach((value, i) => {
    if (value === null || !Number.isFinite(value)) {
      drawing = false;
      return;
    }
    const clamped = Math.min(Math.max(value, 0), max);
    const x = round(i * step);
    const y = round(height - (clamped / max) * height);
    parts.push(`${drawing ? 'L' : 'M'}${x},${y}`);
    drawing = true;
  });
  return parts.join(' ');
}

/** "Nice" tick values covering [min, max]: steps of 1, 2 or 5 times a power of ten. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) {
    return [];
  }
  if (min === max) {
    return [min];
  }
  const [lo, hi] = min < max ? [min, max] : [max, min];
  const raw = (hi - lo) / Math.max(1, count);
  const power = Math.pow(10, Math.floor(Math.log10(raw)));
  const fraction = raw / power;
  const step = (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
  const ticks: number[] = [];
  for (let tick = Math.ceil(lo / step) * step; tick <= hi + step * 1e-9; tick += step) {
    ticks.push(Number(tick.toPrecision(12)));
  }
  return ticks;
}

/** One run's curve in a chart: its path and the points drawn as dots (lone points need one). */
export interface ChartSeries {
  path: string;
  dots: { x: number; y: number }[];
}

/** Where the axes of a chart go and how each run's values map into its box. */
export interface ChartGeometry {
  series: ChartSeries[];
  xTicks: { value: number; x: number }[];
  yTicks: { value: number; y: number }[];
}

/**
 * Lay out overlaid curves: `steps` on the x axis, one `values` array per run
 * (aligned with `steps`, `null` where a run logged nothing). The plot area is
 * `width` x `height` inside `pad` pixels of margin on each side given.
 */
export function chartGeometry(
  steps: readonly number[],
  runs: readonly (readonly (number | null)[])[],
  width: number,
  height: number,
  pad: { left: number; right: number; top: number; bottom: number }
): ChartGeometry {
  const finite = runs.flatMap(values => values.filter((v): v is number => v !== null && Number.isFinite(v)));
  if (steps.length === 0 || finite.length === 0) {
    return { series: runs.map(() => ({ path: '', dots: [] })), xTicks: [], yTicks: [] };
  }
  let [yMin, yMax] = [Math.min(...finite), Math.max(...finite)];
  if (yMin === yMax) {
    const spread = Math.abs(yMin) * 0.05 || 1;
    [yMin, yMax] = [yMin - spread, yMax + spread];
  }
  const [xMin, xMax] = [steps[0], steps[steps.length - 1]];
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const x = (step: number): number =>
    round(pad.left + (xMax === xMin ? plotW / 2 : ((step - xMin) / (xMax - xMin)) * plotW));
  const y = (value: number): number => round(pad.top + plotH - ((value - yMin) / (yMax - yMin)) * plotH);

  const series = runs.map(values => {
    const parts: string[] = [];
    const dots: { x: number; y: number }[] = [];
    let run: { x: number; y: number }[] = [];
    const flush = (): void => {
      if (run.length === 1) {
        dots.push(run[0]);
      }
      run.forEach((p, i) => parts.push(`${i === 0 ? 'M' : 'L'}${p.x},${p.y}`));
      run = [];
    };
    values.forEach((value, i) => {
      if (value === null || !Number.isFinite(value)) {
        flush();
      } else {
        run.push({ x: x(steps[i]), y: y(value) });
      }
    });
    flush();
    return { path: parts.join(' '), dots };
  });
  const xTicks = niceTicks(xMin, xMax, 5)
    .filter(v => Number.isInteger(v))
    .map(value => ({ value, x: x(value) }));
  const yTicks = niceTicks(yMin, yMax, 5)
    .filter(v => v >= yMin && v <= yMax)
    .map(value => ({ value, y: y(value) }));
  return { series, xTicks, yTicks };
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
