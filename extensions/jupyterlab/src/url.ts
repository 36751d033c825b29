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

/** The dashboard's pages: slug -> tab title (the slugs of dashboards/app.py's PAGES). */
export const DASHBOARD_PAGES: Record<string, string> = {
  overview: 'Overview',
  data: 'Data',
  experiments: 'Experiments',
  registry: 'Registry & Deploy',
  gpus: 'GPUs'
};

/**
 * The URL a main-area tab loads for a dashboard `page` (unknown pages: the
 * overview): the page alone, without the dashboard's own navigation.
 */
export function dashboardUrl(baseUrl: string, page: string): string {
  const slug = page in DASHBOARD_PAGES ? page : 'overview';
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  return `${base}workbench/dashboard/open${queryString({ page: slug, embed: 'true' })}`;
}
