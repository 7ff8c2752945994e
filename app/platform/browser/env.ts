/** What the Vite build tells the app about where it is served (import.meta.env stays out of app/lib). */

/** The app's base path, with a trailing slash ('/' unless built with --base). */
export function appBasePath(): string {
  const base = import.meta.env.BASE_URL ?? '/';
  return base.endsWith('/') ? base : `${base}/`;
}

/** Where the app's own models are served: `${BASE_URL}models/`. */
export function appModelsBaseUrl(): string {
  return `${appBasePath()}models/`;
}
