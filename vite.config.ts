import fs from 'node:fs';
import path from 'node:path';
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';
import { VitePWA } from 'vite-plugin-pwa';

/**
 * onnxruntime-web is served by the app itself from /ort/ and loaded at run time by the model workers.
 *
 * Why not `import 'onnxruntime-web'` in each worker: Vite bundles every worker separately, so two model workers would
 * carry two copies of ORT; and the bundled build spawns its WASM threads from `import.meta.url`, which inside a
 * bundled worker chunk is the worker itself (our comlink code would run in every pthread). Loading the one
 * unbundled ORT build (ort.min.mjs: WebGPU via JSEP + WASM) from the app's own origin gives exactly one copy, threads
 * that load only ORT's own glue file, and no CDN (ORT's wasmPaths points at the same folder).
 */
const ORT_DIST = path.resolve(import.meta.dirname, 'node_modules/onnxruntime-web/dist');
/**
 * Two builds, one per WebGPU engine (app/lib/runtime/webgpu-engine.ts): JSEP (ort.min.mjs, the default, precached)
 * and the native WebGPU EP (ort.webgpu.min.mjs + its Asyncify wasm, fetched only by a worker that uses it and then
 * cached on demand, not precached: 27 MB more for every visitor otherwise). A worker imports exactly one of them.
 */
const ORT_FILES = [
  'ort.min.mjs',
  'ort-wasm-simd-threaded.jsep.mjs',
  'ort-wasm-simd-threaded.jsep.wasm',
  'ort.webgpu.min.mjs',
  'ort-wasm-simd-threaded.asyncify.mjs',
  'ort-wasm-simd-threaded.asyncify.wasm',
];
const ORT_ON_DEMAND = 'ort/ort-wasm-simd-threaded.asyncify.wasm';

function contentType(file: string): string {
  if (file.endsWith('.wasm')) return 'application/wasm';
  return 'text/javascript';
}

function selfHostedOrt(): Plugin {
  return {
    name: 'cxr-self-hosted-ort',
    configureServer(server) {
      // Registered before Vite's own middlewares so the dev server does not try to transform ORT's files.
      server.middlewares.use((req, res, next) => {
        const m = /^\/ort\/([^?#/]+)/.exec(req.url ?? '');
        if (!m || !ORT_FILES.includes(m[1])) return next();
        res.setHeader('Content-Type', contentType(m[1]));
        res.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
        res.setHeader('Cross-Origin-Resource-Policy', 'same-origin');
        fs.createReadStream(path.join(ORT_DIST, m[1])).pipe(res);
      });
    },
    generateBundle() {
      for (const f of ORT_FILES) {
        this.emitFile({ type: 'asset', fileName: `ort/${f}`, source: fs.readFileSync(path.join(ORT_DIST, f)) });
      }
    },
  };
}

/**
 * transformers.js' browser build falls back to jsDelivr for ORT's wasm when `wasmPaths` is unset
 * (src/backends/onnx.js). The app always sets it before importing transformers.js (app/lib/runtime/transformers.ts),
 * so that branch never runs; the CDN prefix is still replaced by the app's own ort/ folder, so the build holds no CDN
 * URL at all (scripts/check-prod-build.mjs checks) and even that branch could only reach this origin.
 */
function transformersWithoutCdn(): Plugin {
  let ortBase = '/ort/';
  const CDN = 'https://cdn.jsdelivr.net/npm/onnxruntime-web@${ONNX_ENV.versions.web}/dist/';
  return {
    name: 'cxr-transformers-without-cdn',
    configResolved(c) {
      ortBase = `${c.base.endsWith('/') ? c.base : `${c.base}/`}ort/`;
    },
    transform(code, id) {
      if (!/@huggingface[\\/]transformers[\\/]dist[\\/]transformers\.web\.js$/.test(id.split('?')[0])) return null;
      if (!code.includes(CDN)) this.error(`transformers.web.js no longer has the CDN fallback this plugin replaces (${CDN}): check src/backends/onnx.js`);
      return { code: code.replace(CDN, ortBase), map: null };
    },
  };
}

/**
 * The page's Content-Security-Policy, as a <meta> in the built index.html (so it holds on any static host; a host that
 * can send headers should send the same policy plus `frame-ancestors 'none'`, which a meta tag cannot carry).
 * - script-src 'self' 'wasm-unsafe-eval': the app's own modules and WebAssembly (ORT, the DICOM codecs); no inline
 *   script, no eval.
 * - worker-src 'self' blob:: the app's workers; blob: for libraries that start workers from a Blob URL.
 * - connect-src: 'self' (the app's own models, ORT's files) plus the model sources a user may add. A meta policy is
 *   fixed when the page loads and can only be narrowed later, never widened, so a source typed into the Models view
 *   at run time can only work if the policy already allows it. The default therefore allows any https: origin for
 *   connections only: a model file fetched from there is data, checked against the manifest's sha256 and never run
 *   as script (script-src stays 'self'), and plain http: sources stay refused. A deployment that knows its sources
 *   pins them at build time: CXR_MODEL_ORIGINS="https://huggingface.co https://*.hf.co" replaces `https:`.
 * - img-src adds blob: and data: (thumbnails and exports are object URLs / canvas data URLs).
 * Only production and test builds get it: Vite's dev server injects inline scripts for hot reload.
 */
export function contentSecurityPolicy(modelOrigins = process.env.CXR_MODEL_ORIGINS?.trim() || 'https:'): string {
  return [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "worker-src 'self' blob:",
    `connect-src 'self' ${modelOrigins}`,
    "img-src 'self' blob: data:",
    "style-src 'self'",
    "font-src 'self'",
    "manifest-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
  ].join('; ');
}

function cspMeta(): Plugin {
  return {
    name: 'cxr-csp-meta',
    apply: 'build',
    transformIndexHtml: {
      order: 'post',
      handler: () => [{ tag: 'meta', attrs: { 'http-equiv': 'Content-Security-Policy', content: contentSecurityPolicy() }, injectTo: 'head-prepend' }],
    },
  };
}

// Cross-origin isolation (SharedArrayBuffer) lets ORT's WASM backend use threads.
const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  plugins: [
    react(),
    selfHostedOrt(),
    transformersWithoutCdn(),
    cspMeta(),
    VitePWA({
      // Prompt, never auto-update: a new version waits until the user reloads (app/components/UpdateBanner.tsx asks
      // first when work is running); skipWaiting + clientsClaim reloaded pages mid-batch (issue 19.3).
      registerType: 'prompt',
      injectRegister: false, // app/main.tsx registers it after first paint
      strategies: 'generateSW',
      includeAssets: ['favicon.svg', 'icons/*.png'],
      manifest: {
        name: 'CXR Studio — on-device chest X-ray research',
        short_name: 'CXR Studio',
        description: 'Research tool: chest X-ray classification, zero-shot labels and batch metrics, on this device. Not for diagnosis.',
        theme_color: '#0f172a',
        background_color: '#0b1120',
        display: 'standalone',
        start_url: '.',
        icons: [
          { src: 'icons/icon-192.png', sizes: '192x192', type: 'image/png' },
          { src: 'icons/icon-512.png', sizes: '512x512', type: 'image/png' },
          { src: 'icons/icon-maskable-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
        ],
      },
      workbox: {
        // Adds COOP/COEP to what the service worker serves: cross-origin isolation (WASM threads) on static hosts
        // that cannot set headers. See public/coi-sw.js.
        importScripts: ['coi-sw.js'],
        // Take control on the first visit, so that visit's own requests (manifest, models) are already cached. A
        // later version installs and waits (no skipWaiting) until the page sends SKIP_WAITING (UpdateBanner).
        clientsClaim: true,
        // The app shell, incl. ORT's own glue and wasm (28 MB) so the runtime works offline.
        globPatterns: ['**/*.{js,mjs,css,html,svg,png,wasm,webmanifest}'],
        // Model files are NOT precached: the app downloads them on request into its own model cache.
        globIgnores: ['models/**', ORT_ON_DEMAND],
        maximumFileSizeToCacheInBytes: 64 * 1024 * 1024,
        navigateFallback: 'index.html',
        navigateFallbackDenylist: [/^\/models\//, /^\/ort\//],
        runtimeCaching: [
          {
            // The native WebGPU EP's wasm: cached on first use (a worker on that engine), then served offline.
            urlPattern: ({ url }) => url.pathname.endsWith('/ort/ort-wasm-simd-threaded.asyncify.wasm'),
            handler: 'CacheFirst',
            options: { cacheName: 'cxr-ort-on-demand', expiration: { maxEntries: 2 } },
          },
          {
            // The manifest: fresh when online, last copy when offline.
            urlPattern: ({ url }) => /\/models\/manifest\.json$/.test(url.pathname),
            handler: 'NetworkFirst',
            options: { cacheName: 'cxr-manifest', networkTimeoutSeconds: 5 },
          },
          {
            // Model files: answered from the app's model cache (written by ModelStore) when present, network
            // otherwise. Deliberately not written here, so that only verified downloads ever enter that cache.
            // Serialized into the service worker: it cannot reference imports, hence the literal prefix.
            urlPattern: ({ url }) => /\/models\/.+/.test(url.pathname) && !/manifest\.json$/.test(url.pathname),
            handler: async ({ request }) => {
              const names = await caches.keys();
              for (const name of names) {
                if (!name.startsWith('cxr-models')) continue;
                const hit = await (await caches.open(name)).match(request, { ignoreSearch: true });
                if (hit) return hit;
              }
              return fetch(request);
            },
          },
        ],
      },
    }),
  ],
  worker: {
    format: 'es',
    // transformers.js is imported in the model workers (lib/runtime/transformers.ts): the same CDN-free copy there.
    plugins: () => [transformersWithoutCdn()],
  },
  resolve: {
    // transformers.js's browser build imports its own ORT; both names become the app's one ORT (/ort/), which
    // app/lib/runtime/transformers.ts sets on globalThis before importing it (scripts/check-prod-build.mjs checks).
    alias: [
      { find: /^onnxruntime-web\/webgpu$/, replacement: path.resolve(import.meta.dirname, 'app/platform/browser/ort-global.ts') },
      { find: /^onnxruntime-common$/, replacement: path.resolve(import.meta.dirname, 'app/platform/browser/ort-global.ts') },
    ],
  },
  build: {
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 2000,
  },
  server: { headers: isolationHeaders },
  preview: { headers: isolationHeaders },
});
