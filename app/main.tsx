/// <reference types="vite-plugin-pwa/vanillajs" />
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './App';
import { UpdateBanner } from './components/UpdateBanner';
import { useAppStore } from './store';
import { workInProgress } from './store/selectors';
import './styles.css';

/** Set when the user has already agreed to leave (the update prompt asked): the beforeunload guard stays quiet. */
let leaveConfirmed = false;

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
    <UpdateBanner onLeave={() => (leaveConfirmed = true)} />
  </StrictMode>,
);

// Leaving the page (reload, close, navigation) while a batch, evaluation or generation runs asks first: the browser
// shows its own "Leave site?" dialog when beforeunload is cancelled (HTML, "prompt to unload").
window.addEventListener('beforeunload', (e) => {
  if (leaveConfirmed || !workInProgress(useAppStore.getState())) return;
  e.preventDefault();
  e.returnValue = ''; // older Chromium and Safari still need returnValue set
});

// Test hook: the real store (and through it the real workers), in TEST BUILDS ONLY (`vite build --mode test`, what
// the browser tests run against). A production build compiles this out: the store holds the DICOM patient fields,
// which no other script on the page may reach. scripts/check-prod-build.mjs checks the production bundle for it.
if (import.meta.env.MODE === 'test') {
  (window as unknown as { cxrStudio: unknown }).cxrStudio = { store: useAppStore };
}

// Offline support: registered after first paint so it never delays the app.
if ('serviceWorker' in navigator && import.meta.env.PROD) {
  // A static host that sends no COOP/COEP: the service worker adds them (public/coi-sw.js), but only to pages it
  // serves. When it takes control of this page, reload once so the page is cross-origin isolated (WASM threads),
  // unless work is running (then the next visit is isolated instead).
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    if (globalThis.crossOriginIsolated || sessionStorage.getItem('cxr-coi-reload') || workInProgress(useAppStore.getState())) return;
    sessionStorage.setItem('cxr-coi-reload', '1');
    window.location.reload();
  });
  if (globalThis.crossOriginIsolated) sessionStorage.removeItem('cxr-coi-reload');
  window.addEventListener('load', () => {
    import('virtual:pwa-register')
      .then(({ registerSW }) => {
        // Prompt mode (vite.config.ts registerType 'prompt'): a new version waits until the user reloads through
        // UpdateBanner, which asks first when work is running. Only then is SKIP_WAITING sent and the page reloaded.
        const reload = () => {
          leaveConfirmed = true;
          window.location.reload();
        };
        const updateSW = registerSW({
          immediate: true,
          onNeedRefresh: () =>
            useAppStore.getState().setAppUpdate({
              async apply() {
                // Reload once the new worker controls the page. Its own controllerchange, not workbox-window's
                // 'controlling' event, which does not fire for an update found by the browser's own check.
                navigator.serviceWorker.addEventListener('controllerchange', reload, { once: true });
                await updateSW(true);
                (await navigator.serviceWorker.getRegistration())?.waiting?.postMessage({ type: 'SKIP_WAITING' });
              },
            }),
          onNeedReload: reload,
        });
      })
      .catch((e) => console.warn('service worker registration failed', e));
  });
}
