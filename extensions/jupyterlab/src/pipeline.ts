/** The order to show pipeline stages in: upstream before downstream. Pure, unit tested. */

/** Stages sorted so that each comes after the stages it depends on (ties by name; cycles keep going). */
export function upstreamFirst<T extends { name: string; upstream: string[] }>(stages: readonly T[]): T[] {
  const byName = new Map(stages.map(stage => [stage.name, stage]));
  const placed = new Set<string>();
  const ordered: T[] = [];
  const visit = (stage: T, path: Set<string>): void => {
    if (placed.has(stage.name) || path.has(stage.name)) {
      return;
    }
    path.add(stage.name);
    [...stage.upstream].sort().forEach(name => {
      const upstream = byName.get(name);
      if (upstream) {
        visit(upstream, path);
      }
    });
    placed.add(stage.name);
    ordered.push(stage);
  };
  [...stages].sort((a, b) => a.name.localeCompare(b.name)).forEach(stage => visit(stage, new Set()));
  return ordered;
}
