/*
 * Cross-origin isolation on a static host that cannot set headers (GitHub Pages, a plain file server), the way
 * coi-serviceworker does it: the service worker adds
 *
 *   Cross-Origin-Opener-Policy: same-origin
 *   Cross-Origin-Embedder-Policy: require-corp
 *
 * to every same-origin response it gives the page (documents, scripts, workers, wasm), so that after the first
 * visit the page is crossOriginIsolated and ONNX Runtime's WASM backend gets SharedArrayBuffer threads.
 * app/main.tsx reloads the page once when this worker first takes control of a page that was not isolated.
 *
 * Loaded with importScripts() at the top of Workbox's generated sw.js (vite.config.ts, workbox.importScripts),
 * before Workbox registers its fetch listener: it wraps that listener, so every response Workbox produces
 * (precache, navigation fallback, runtime routes) gets the headers, and same-origin navigations and scripts that no
 * Workbox route answers are fetched from the network and given them too. Headers the server already sends win.
 */
/* eslint-disable no-restricted-globals */
(() => {
  const ISOLATION = {
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Embedder-Policy': 'require-corp',
  };

  function withIsolation(response) {
    // Opaque and error responses cannot be rebuilt (and are not ours to change).
    if (!response || response.status === 0 || response.type === 'opaque' || response.type === 'opaqueredirect') return response;
    const headers = new Headers(response.headers);
    let changed = false;
    for (const [k, v] of Object.entries(ISOLATION)) {
      if (!headers.has(k)) {
        headers.set(k, v);
        changed = true;
      }
    }
    if (!changed) return response;
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  }

  function needsHeaders(request) {
    if (new URL(request.url).origin !== self.location.origin) return false;
    return request.mode === 'navigate' || ['document', 'iframe', 'script', 'worker', 'sharedworker'].includes(request.destination);
  }

  self.__coiWithIsolation = withIsolation;
  const addEventListener = self.addEventListener.bind(self);
  self.addEventListener = (type, listener, options) => {
    if (type !== 'fetch' || typeof listener !== 'function') return addEventListener(type, listener, options);
    return addEventListener(
      'fetch',
      (event) => {
        let responded = false;
        const respondWith = event.respondWith.bind(event);
        Object.defineProperty(event, 'respondWith', {
          configurable: true,
          value: (r) => {
            responded = true;
            respondWith(Promise.resolve(r).then(withIsolation));
          },
        });
        listener.call(self, event);
        if (!responded && needsHeaders(event.request)) respondWith(fetch(event.request).then(withIsolation));
      },
      options,
    );
  };
})();
