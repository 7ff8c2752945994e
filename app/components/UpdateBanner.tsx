import { useAppStore } from '../store';
import { workInProgress } from '../store/selectors';

/**
 * "Update available — reload": shown when a new version of the app (service worker) is waiting. Nothing reloads by
 * itself (issue 19.3: the old skipWaiting + clientsClaim update reloaded pages mid-batch); when a batch, evaluation
 * or generation is running, the user is asked first and told what would be lost.
 */
export function UpdateBanner({ confirm = (m: string) => window.confirm(m), onLeave }: { confirm?: (message: string) => boolean; onLeave?: () => void }) {
  const update = useAppStore((s) => s.appUpdate);
  if (!update) return null;
  const reload = () => {
    const work = workInProgress(useAppStore.getState());
    if (work && !confirm(`${work[0].toUpperCase()}${work.slice(1)} is running; reloading now stops it and loses what it has not saved. Reload anyway?`)) return;
    onLeave?.();
    void update.apply();
  };
  return (
    <div
      role="status"
      data-testid="update-banner"
      style={{ position: 'fixed', bottom: '1rem', right: '1rem', zIndex: 50, background: '#1e293b', color: '#f8fafc', padding: '0.6rem 0.9rem', borderRadius: '0.5rem', boxShadow: '0 4px 16px rgba(0,0,0,.4)' }}
    >
      A new version of CXR Studio is ready.{' '}
      <button type="button" onClick={reload} data-testid="update-reload">
        Update available — reload
      </button>
    </div>
  );
}
