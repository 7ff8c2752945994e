/**
 * The Segment side panel: model choice and status, the embedding line, tools, candidates, the labelled masks and
 * the exports. A DICOM SEG export asks, at export time, whether the identifying fields (patient name, ID, birth
 * date, accession number...) go into the file.
 */
import { useEffect, useMemo, useState } from 'react';
import { chosenModel, currentSegImage, layerMask, useAppStore, type SegLayer } from '../../store';
import { maskAreaIn } from '../../lib/sam';
import { WeightsBadge } from '../WeightsBadge';
import { saveFiles } from './canvas-util';

function LayerRow({ l, active, width, height }: { l: SegLayer; active: boolean; width: number; height: number }) {
  const setActive = useAppStore((s) => s.segmentSetActiveLayer);
  const rename = useAppStore((s) => s.segmentRenameLayer);
  const m = layerMask(l);
  // counted once per mask, not on every render, and only inside its bounds
  const area = useMemo(() => (m ? maskAreaIn(m, width, height) : 0), [m, width, height]);
  return (
    <li className={active ? 'active' : ''} data-testid="segment-layer">
      <span className="swatch" style={{ background: `rgb(${l.color.join(',')})` }} />
      <input aria-label="mask label" value={l.label} onChange={(e) => rename(l.id, e.target.value)} onFocus={() => setActive(l.id)} />
      <button type="button" onClick={() => setActive(l.id)} aria-pressed={active}>
        {active ? 'editing' : 'edit'}
      </button>
      <span className="small muted" data-testid="segment-layer-area">
        {m ? `${area} px` : 'empty'}
      </span>
    </li>
  );
}

/** The export buttons; DICOM SEG first asks whether identifying fields are included. */
function SegmentExports({ dicom }: { dicom: boolean }) {
  const exportAs = useAppStore((s) => s.segmentExport);
  const [asking, setAsking] = useState(false);
  return (
    <>
      <h3>Export</h3>
      <div className="row wrap">
        <button type="button" onClick={() => saveFiles(exportAs('png'))} data-testid="segment-export-png">
          PNG
        </button>
        <button type="button" onClick={() => saveFiles(exportAs('polygons'))} data-testid="segment-export-polygons">
          Polygons JSON
        </button>
        {dicom && (
          <button type="button" onClick={() => setAsking(true)} aria-expanded={asking} data-testid="segment-export-seg">
            DICOM SEG
          </button>
        )}
      </div>
      {dicom && asking && (
        <fieldset className="small" data-testid="segment-export-seg-ask">
          <legend>Include identifying fields (patient name, ID, birth date, accession number) in the DICOM SEG?</legend>
          <div className="row wrap">
            <button
              type="button"
              data-testid="segment-export-seg-deidentified"
              onClick={() => {
                setAsking(false);
                saveFiles(exportAs('dicom-seg', { includeIdentifying: false }));
              }}
            >
              No: leave them out
            </button>
            <button
              type="button"
              data-testid="segment-export-seg-identifying"
              onClick={() => {
                setAsking(false);
                saveFiles(exportAs('dicom-seg', { includeIdentifying: true }));
              }}
            >
              Yes: include them
            </button>
            <button type="button" onClick={() => setAsking(false)}>
              Cancel
            </button>
          </div>
        </fieldset>
      )}
    </>
  );
}

export function SegmentPanel() {
  const manifest = useAppStore((s) => s.manifest);
  const seg = useAppStore((s) => s.sam);
  const item = useAppStore((s) => s.images.find((i) => i.id === s.currentId));
  const st = useAppStore(currentSegImage);
  const a = useAppStore.getState();
  const chooseModel = useAppStore((s) => s.chooseModel);
  const prepare = useAppStore((s) => s.segmentPrepare);
  const currentId = useAppStore((s) => s.currentId);
  const frame = item?.dicom?.frameIndex ?? 0;
  const sams = manifest?.models.filter((m) => m.family === 'sam') ?? [];
  // the chosen model, else the default (the project's trained lung-sam when the manifest has it)
  const entry = useAppStore((s) => chosenModel(s, 'sam'));
  const prewarm = useAppStore((s) => s.segmentPrewarm);
  useEffect(() => {
    if (currentId && entry) void prepare();
    // no image yet: a cached model's sessions are created and warmed while the user chooses one
    else if (entry) void prewarm();
  }, [currentId, frame, entry?.id, prepare, prewarm]);
  const active = st?.history.present.find((l) => l.id === st.activeLayer);

  return (
    <div className="panel" data-testid="segment-panel">
      <h2>Segment</h2>
      <label>
        Model{' '}
        <select data-testid="segment-model" value={entry?.id ?? ''} onChange={(e) => void chooseModel('sam', e.target.value)}>
          {sams.map((m) => (
            <option key={m.id} value={m.id}>
              {m.name}
            </option>
          ))}
        </select>
      </label>
      {entry && <WeightsBadge weights={entry.weights} />}
      <p className="small" data-testid="segment-status">
        {seg.loading
          ? `loading model: ${seg.loadMessage ?? ''}`
          : seg.loadError
            ? ''
            : seg.info
              ? `${seg.info.layout} layout on ${seg.info.report.backend}${seg.info.report.fellBack ? ' (WebGPU failed)' : ''}`
              : ''}
      </p>
      {seg.loadError && (
        <p className="error-text" data-testid="segment-error" role="alert">
          {seg.loadError}
        </p>
      )}
      {item && st && (
        <p className="small" data-testid="segment-embedding">
          {st.encoding
            ? 'encoding image…'
            : st.key
              ? st.from === 'encoder'
                ? `embedding computed (${Math.round(st.encodeMs ?? 0)} ms)`
                : `embedding from cache (${st.from === 'indexeddb' ? 'IndexedDB' : 'memory'})`
              : (st.error ?? '')}
          {st.key && st.resident === 'gpu' && <span data-testid="segment-resident"> · resident on the GPU</span>}
          {st.decodeMs !== undefined && <span data-testid="segment-decode-ms"> · last decode {st.decodeMs.toFixed(1)} ms</span>}
        </p>
      )}
      <div className="row wrap">
        <button type="button" aria-pressed={seg.tool === 'click'} onClick={() => a.segmentSet({ tool: 'click' })}>
          Clicks
        </button>
        <button type="button" aria-pressed={seg.tool === 'box'} onClick={() => a.segmentSet({ tool: 'box' })} disabled={seg.info ? !seg.info.supportsBox : false}>
          Box
        </button>
        <button type="button" onClick={() => a.segmentUndo()} disabled={!st?.history.past.length} data-testid="segment-undo">
          Undo
        </button>
        <button type="button" onClick={() => a.segmentRedo()} disabled={!st?.history.future.length} data-testid="segment-redo">
          Redo
        </button>
        <button type="button" onClick={() => a.segmentClear()} disabled={!active?.masks} data-testid="segment-clear">
          Clear
        </button>
      </div>
      <label className="row small">
        <input type="checkbox" checked={seg.refine} onChange={(e) => a.segmentSet({ refine: e.target.checked })} disabled={seg.info ? !seg.info.supportsMaskInput : false} />
        refine with the previous mask
      </label>
      <label className="row small">
        <input type="checkbox" checked={seg.hoverPreview} onChange={(e) => a.segmentSet({ hoverPreview: e.target.checked })} data-testid="segment-hover-toggle" />
        hover preview <span className="muted" data-testid="segment-hover-decodes">({seg.hoverDecodes} decodes)</span>
      </label>
      <label className="row small">
        overlay opacity
        <input type="range" min={0} max={1} step={0.05} value={seg.opacity} onChange={(e) => a.segmentSet({ opacity: Number(e.target.value) })} data-testid="segment-opacity" />
      </label>
      {active?.iou && (
        <div data-testid="segment-candidates">
          <h3>Masks (predicted IoU)</h3>
          <ol className="candidates">
            {active.iou.map((v, i) => (
              <li key={i}>
                <button type="button" aria-pressed={i === active.selected} onClick={() => a.segmentSelectCandidate(i)} data-testid="segment-candidate">
                  #{i + 1}: {v.toFixed(3)}
                  {i === active.selected ? ' ✓' : ''}
                </button>
              </li>
            ))}
          </ol>
        </div>
      )}
      {st && (
        <>
          <h3>Labelled masks</h3>
          <ul className="layers">
            {st.history.present.map((l) => (
              <LayerRow key={l.id} l={l} active={l.id === st.activeLayer} width={st.width} height={st.height} />
            ))}
          </ul>
          <button type="button" onClick={() => a.segmentAddLayer()} data-testid="segment-add-layer">
            + new mask
          </button>
          <SegmentExports dicom={!!item?.dicom} />
        </>
      )}
    </div>
  );
}
