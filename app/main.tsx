/// <reference types="vite-plugin-pwa/vanillajs" />
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { useAppStore } from './store';
import './styles.css';

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);

// Test hook: the real store (and through it the real workers), in TEST BUILDS ONLY (`vite build --mode test`, what
// the browser tests run against). A production build compiles this out: the store holds the DICOM patient fields,
// which no other script on the page may reach. scripts/check-prod-build.mjs checks the production bundle for it.
if (import.meta.env.MODE === 'test') {
  (window as unknown as { cxrStudio: unknown }).cxrStudio = { store: useAppStore };
}

// Offline support: registered after first paint so it never delays the app.
if ('serviceWorker' in navigator && import.meta.env.PROD) {
  // A static host that sends no COOP/COEP: the service worker adds them (public/coi-sw.js), but only to pages it
  // serves. When it takes control of this page, reload once so the page is cross-origin isolated (WASM threads).
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    if (globalThis.crossOriginIsolated || sessionStorage.getItem('cxr-coi-reload')) return;
    sessionStorage.setItem('cxr-coi-reload', '1');
    window.location.reload();
  });
  if (globalThis.crossOriginIsolated) sessionStorage.removeItem('cxr-coi-reload');
  window.addEventListener('load', () => {
    import('virtual:pwa-register')
      .then(({ registerSW }) => registerSW({ immediate: true }))
      .catch((e) => console.warn('service worker registration failed', e));
  });
}
