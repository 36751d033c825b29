/**
 * Query strings for the Workbench API: arrays repeat their parameter. Pure, unit tested.
 */

export type QueryValue = string | number | boolean | readonly string[] | null | undefined;

/** `{experiment: ['a', 'b'], max_results: 50}` -> `"?experiment=a&experiment=b&max_results=50"`. */
export function queryString(query: Record<string, QueryValue>): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === null || value === undefined || value === '') {
      continue;
    }
    if (Array.isArray(value)) {
      value.forEach(item => params.append(name, item));
    } else {
      params.append(name, String(value));
    }
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

/** A path segment for a name that may hold `/`, spaces or `@` (model and deployment names). */
export function segment(name: string): string {
  return encodeURIComponent(name);
}
