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
const ORT_FILES = ['ort.min.mjs', 'ort-wasm-simd-threaded.jsep.mjs', 'ort-wasm-simd-threaded.jsep.wasm'];

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

// Cross-origin isolation (SharedArrayBuffer) lets ORT's WASM backend use threads.
const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  plugins: [
    react(),
    selfHostedOrt(),
    VitePWA({
      registerType: 'autoUpdate',
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
        // Take control on the first visit, so that visit's own requests (manifest, models) are already cached.
        clientsClaim: true,
        skipWaiting: true,
        // The app shell, incl. ORT's own glue and wasm (28 MB) so the runtime works offline.
        globPatterns: ['**/*.{js,mjs,css,html,svg,png,wasm,webmanifest}'],
        // Model files are NOT precached: the app downloads them on request into its own model cache.
        globIgnores: ['models/**'],
        maximumFileSizeToCacheInBytes: 64 * 1024 * 1024,
        navigateFallback: 'index.html',
        navigateFallbackDenylist: [/^\/models\//, /^\/ort\//],
        runtimeCaching: [
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
  },
  build: {
    target: 'es2022',
    sourcemap: false,
    chunkSizeWarningLimit: 2000,
  },
  server: { headers: isolationHeaders },
  preview: { headers: isolationHeaders },
});
