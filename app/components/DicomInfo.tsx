import { useAppStore } from '../store';

/** DICOM header: technical fields always; identifying fields (names, IDs, dates, places) only on request. */
export function DicomInfo() {
  const item = useAppStore((s) => s.images.find((i) => i.id === s.currentId));
  const show = useAppStore((s) => s.viewer.showIdentifying);
  const setViewer = useAppStore((s) => s.setViewer);
  const d = item?.dicom;
  if (!d) return null;
  const m = d.metadata;
  const pub: [string, unknown][] = [
    ['Modality', m.Modality],
    ['View', m.ViewPosition],
    ['Body part', m.BodyPartExamined],
    ['Size', `${m.Columns}×${m.Rows}`],
    ['Photometric', m.PhotometricInterpretation],
    ['Bits stored', m.BitsStored],
    ['Transfer syntax', m.TransferSyntaxName],
    ['Decoded by', d.codec],
    ['Frames', d.frames > 1 ? d.frames : undefined],
    ['Modality LUT', d.rgb ? undefined : d.modalityTransform],
    ['Window (file)', m.WindowCenter != null ? `C ${m.WindowCenter} / W ${m.WindowWidth}` : 'none: min/max used'],
  ];
  const ident = Object.entries(d.identifying).filter(([, v]) => v != null && v !== '');
  return (
    <section className="panel" aria-labelledby="dcm-h" data-testid="dicom-info">
      <h2 id="dcm-h">DICOM</h2>
      <dl className="facts">
        {pub
          .filter(([, v]) => v != null && v !== '')
          .map(([k, v]) => (
            <div key={k} className="fact">
              <dt>{k}</dt>
              <dd>{String(v)}</dd>
            </div>
          ))}
      </dl>
      {d.notes.length > 0 && <p className="muted small">{d.notes.join(' · ')}</p>}
      <button type="button" onClick={() => setViewer({ showIdentifying: !show })} data-testid="toggle-identifying">
        {show ? 'hide identifying fields' : 'show identifying fields'}
      </button>
      {show && (
        <dl className="facts identifying" data-testid="identifying-fields">
          {ident.length === 0 && <p className="muted small">No identifying fields in this file.</p>}
          {ident.map(([k, v]) => (
            <div key={k} className="fact">
              <dt>{k}</dt>
              <dd>{String(v)}</dd>
            </div>
          ))}
        </dl>
      )}
    </section>
  );
}
