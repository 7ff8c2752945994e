import { useAppStore } from '../store';

/** Errors the user must see (bad files, model problems); always in the DOM so screen readers announce new ones. */
export function AlertRegion() {
  const alerts = useAppStore((s) => s.alerts);
  const dismiss = useAppStore((s) => s.dismissAlert);
  // Newest first, three at most on screen: the image and its result must stay visible under a burst of bad files.
  const shown = alerts.slice(-3).reverse();
  return (
    <div className="alerts" role="alert" aria-live="assertive" data-testid="alerts">
      {alerts.length > shown.length && (
        <div className="muted small">
          {alerts.length - shown.length} older message{alerts.length - shown.length === 1 ? '' : 's'}{' '}
          <button type="button" onClick={() => alerts.slice(0, -3).forEach((a) => dismiss(a.id))}>
            dismiss
          </button>
        </div>
      )}
      {shown.map((a) => (
        <div key={a.id} className={`alert alert-${a.kind}`} data-testid="alert-item">
          <span>{a.message}</span>
          <button type="button" aria-label="Dismiss" onClick={() => dismiss(a.id)}>
            ×
          </button>
        </div>
      ))}
    </div>
  );
}
