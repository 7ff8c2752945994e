import { useAppStore } from '../store';

/** Errors the user must see (bad files, model problems); always in the DOM so screen readers announce new ones. */
export function AlertRegion() {
  const alerts = useAppStore((s) => s.alerts);
  const dismiss = useAppStore((s) => s.dismissAlert);
  return (
    <div className="alerts" role="alert" aria-live="assertive" data-testid="alerts">
      {alerts.map((a) => (
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
